"""LoRA at real model scale: trainable-parameter counts, memory and checkpoint size (timing is :mod:`lora_core.benchmark`).

Every number here is computed from the model dimensions below, never quoted. The counting rule is the
paper's: each adapted d_in→d_out matrix adds r·(d_in + d_out) trainable numbers (A is d_in×r, B r×d_out).

Targets are named abstractly: "q", "k", "v", "o" (the attention projections) and "ffn" (every linear
layer of the feed-forward block). How they map onto each architecture's modules (as PEFT sees them):

- GPT-2 fuses q, k and v into one ``attn.c_attn`` (d→3d). PEFT can only adapt a whole module, so
  targeting any non-empty subset of {q, k, v} adapts ``c_attn`` once, adding r·(d + 3d); targeting
  only "q" on GPT-2 therefore costs the same as targeting q, k and v. "o" is ``attn.c_proj``;
  "ffn" is ``mlp.c_fc`` and ``mlp.c_proj``.
- BERT / RoBERTa: ``attention.self.query|key|value`` and ``attention.output.dense``; "ffn" is
  ``intermediate.dense`` and the layer's ``output.dense`` (never the pooler or a classifier head).
- T5 (v1, DenseReluDense): q, k, v, o in all 36 attention blocks (12 encoder self, 12 decoder self,
  12 decoder cross); "ffn" is ``wi`` and ``wo`` in each of the 24 feed-forward blocks.
- Llama / Mistral: ``q_proj``, ``k_proj``, ``v_proj``, ``o_proj``; "ffn" is ``gate_proj``,
  ``up_proj`` and ``down_proj`` (SwiGLU). With grouped-query attention k and v are
  d→kv_heads·head_dim (4096→1024 for Llama-3-8B and Mistral-7B).
- GPT-3 175B: separate d×d q, k, v, o (as the paper counts them) and a 2-layer MLP.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from .checks import is_whole, positive_int

TARGETS = ("q", "k", "v", "o", "ffn")
FFN_KINDS = ("mlp", "swiglu")


def gpt_param_total(vocab: int, context: int, d: int, layers: int, ffn: int) -> int:
    """Parameters of a GPT-2-style decoder: token + position embeddings, per layer 2 LayerNorms,
    fused qkv (d→3d) and output projection with biases, a 2-layer MLP with biases; a final LayerNorm.
    The LM head is tied to the token embedding, so it adds nothing. Reproduces GPT-2's exact totals."""
    per_layer = (
        2 * d                      # ln_1 (weight + bias)
        + d * 3 * d + 3 * d        # c_attn
        + d * d + d                # attn c_proj
        + 2 * d                    # ln_2
        + d * ffn + ffn            # mlp c_fc
        + ffn * d + d              # mlp c_proj
    )
    return (vocab + context) * d + layers * per_layer + 2 * d


@dataclass(frozen=True)
class ModelSpec:
    """Dimensions of one real model; ``base_params`` is its whole parameter count."""
    key: str
    name: str
    hidden: int            # d_model
    layers: int            # transformer layers (T5: encoder + decoder)
    heads: int
    head_dim: int
    ffn: int               # feed-forward inner width
    kv_heads: int          # = heads unless grouped-query attention
    ffn_kind: str          # "mlp" (fc_in, fc_out) or "swiglu" (gate, up, down)
    vocab: int
    attention_blocks: int  # blocks with their own q, k, v, o (T5-base: 36)
    ffn_blocks: int        # feed-forward blocks (T5-base: 24)
    fused_qkv: bool        # GPT-2's c_attn: one d→3d module
    base_params: int

    def __post_init__(self) -> None:
        if self.ffn_kind not in FFN_KINDS:
            raise ValueError(f"ffn_kind must be one of {FFN_KINDS}, got {self.ffn_kind!r}")

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        # grouped-query attention shares each K/V head among heads/kv_heads query heads
        return self.kv_heads * self.head_dim


# Base totals: HF architectures are counted from meta-device models (see tests/test_scale.py, which
# rebuilds each one and checks these numbers); the Llama-2-7B, Llama-3-8B and Mistral-7B totals equal
# PEFT's published ones (REFERENCE.md). Llama/Mistral count the untied LM head (…ForCausalLM); GPT-2
# and T5 tie theirs; BERT/RoBERTa are the bare encoders (AutoModel) with the pooler.
# GPT-3 175B has no public weights: its total comes from gpt_param_total (GPT-2's architecture at
# GPT-3's size, vocab 50257, context 2048), 174,604,259,328 ≈ "175B". The LoRA paper's Table 4 counts
# 175,255.8M trainable for its full fine-tuning, 651.5M more, without saying what it includes.
_SPECS = (
    ModelSpec("gpt2", "GPT-2", 768, 12, 12, 64, 3072, 12, "mlp", 50257, 12, 12, True, 124_439_808),
    ModelSpec("gpt2-medium", "GPT-2 medium", 1024, 24, 16, 64, 4096, 16, "mlp", 50257, 24, 24, True,
              354_823_168),
    ModelSpec("gpt2-large", "GPT-2 large", 1280, 36, 20, 64, 5120, 20, "mlp", 50257, 36, 36, True,
              774_030_080),
    ModelSpec("gpt2-xl", "GPT-2 XL", 1600, 48, 25, 64, 6400, 25, "mlp", 50257, 48, 48, True,
              1_557_611_200),
    ModelSpec("bert-base", "BERT-base", 768, 12, 12, 64, 3072, 12, "mlp", 30522, 12, 12, False,
              109_482_240),
    ModelSpec("roberta-base", "RoBERTa-base", 768, 12, 12, 64, 3072, 12, "mlp", 50265, 12, 12, False,
              124_645_632),
    ModelSpec("roberta-large", "RoBERTa-large", 1024, 24, 16, 64, 4096, 16, "mlp", 50265, 24, 24, False,
              355_359_744),
    ModelSpec("t5-base", "T5-base", 768, 24, 12, 64, 3072, 12, "mlp", 32128, 36, 24, False,
              222_903_552),
    ModelSpec("llama-2-7b", "Llama-2-7B", 4096, 32, 32, 128, 11008, 32, "swiglu", 32000, 32, 32, False,
              6_738_415_616),
    ModelSpec("llama-2-13b", "Llama-2-13B", 5120, 40, 40, 128, 13824, 40, "swiglu", 32000, 40, 40, False,
              13_015_864_320),
    ModelSpec("llama-3-8b", "Llama-3-8B", 4096, 32, 32, 128, 14336, 8, "swiglu", 128256, 32, 32, False,
              8_030_261_248),
    ModelSpec("mistral-7b", "Mistral-7B", 4096, 32, 32, 128, 14336, 8, "swiglu", 32000, 32, 32, False,
              7_241_732_096),
    ModelSpec("llama-65b", "LLaMA-65B", 8192, 80, 64, 128, 22016, 64, "swiglu", 32000, 80, 80, False,
              65_285_660_672),
    ModelSpec("llama-2-70b", "Llama-2-70B", 8192, 80, 64, 128, 28672, 8, "swiglu", 32000, 80, 80, False,
              68_976_648_192),
    ModelSpec("gpt3-175b", "GPT-3 175B", 12288, 96, 96, 128, 49152, 96, "mlp", 50257, 96, 96, False,
              gpt_param_total(50257, 2048, 12288, 96, 49152)),
)
MODELS: dict[str, ModelSpec] = {spec.key: spec for spec in _SPECS}


class AdaptedMatrix(NamedTuple):
    module: str   # the architecture's module name, e.g. "attn.c_attn" or "k_proj"
    d_in: int
    d_out: int
    copies: int   # how many of these the model has (one per block)

    def lora_params(self, r: int) -> int:
        return self.copies * r * (self.d_in + self.d_out)


class MemoryBreakdown(NamedTuple):
    weights: int           # every parameter at the model's precision
    gradients: int         # trainable parameters only, at the model's precision
    master_weights: int    # fp32 copy of trainable parameters under mixed precision
    optimizer_states: int  # AdamW's exp_avg and exp_avg_sq per trainable parameter

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.master_weights + self.optimizer_states


class TrainingMemory(NamedTuple):
    full: MemoryBreakdown
    lora: MemoryBreakdown
    trainable_full: int
    trainable_lora: int

    @property
    def ratio(self) -> float:
        """How many times less memory LoRA needs."""
        return self.full.total / self.lora.total


# --- validation -------------------------------------------------------------------------

def get_model(model: str) -> ModelSpec:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    return MODELS[model]


def check_targets(targets: Iterable[str]) -> frozenset[str]:
    """The target set, or a ValueError naming what is not one of q, k, v, o, ffn."""
    if isinstance(targets, str):
        # "qv" would silently iterate as "q", "v"; make the caller say what it means
        raise ValueError(f"targets must be a collection of names, not the string {targets!r}")
    chosen = frozenset(targets)
    unknown = sorted(t for t in chosen if t not in TARGETS)
    if unknown:
        raise ValueError(f"unknown target(s) {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(TARGETS)}")
    return chosen


# --- counting ---------------------------------------------------------------------------

def _attention_matrices(spec: ModelSpec, chosen: frozenset[str]) -> list[AdaptedMatrix]:
    d, blocks = spec.hidden, spec.attention_blocks
    out = []
    if spec.fused_qkv:
        if chosen & {"q", "k", "v"}:
            # one module holds all three, so any of them adapts the whole d→3d map once
            out.append(AdaptedMatrix("attn.c_attn", d, 3 * spec.q_dim, blocks))
        if "o" in chosen:
            out.append(AdaptedMatrix("attn.c_proj", spec.q_dim, d, blocks))
        return out
    shapes = {"q": (d, spec.q_dim), "k": (d, spec.kv_dim), "v": (d, spec.kv_dim), "o": (spec.q_dim, d)}
    for t in ("q", "k", "v", "o"):
        if t in chosen:
            out.append(AdaptedMatrix(t, *shapes[t], blocks))
    return out


def _ffn_matrices(spec: ModelSpec) -> list[AdaptedMatrix]:
    d, f, blocks = spec.hidden, spec.ffn, spec.ffn_blocks
    if spec.ffn_kind == "swiglu":
        return [AdaptedMatrix("ffn.gate", d, f, blocks), AdaptedMatrix("ffn.up", d, f, blocks),
                AdaptedMatrix("ffn.down", f, d, blocks)]
    return [AdaptedMatrix("ffn.fc_in", d, f, blocks), AdaptedMatrix("ffn.fc_out", f, d, blocks)]


def adapted_matrices(model: str, targets: Iterable[str]) -> list[AdaptedMatrix]:
    """The matrices LoRA adapts in ``model`` for these targets, with their shapes and counts."""
    spec, chosen = get_model(model), check_targets(targets)
    out = _attention_matrices(spec, chosen)
    if "ffn" in chosen:
        out += _ffn_matrices(spec)
    return out


def count_lora_params(model: str, targets: Iterable[str], r: int) -> int:
    """Trainable LoRA parameters: Σ over adapted matrices of r·(d_in + d_out); empty targets → 0."""
    r = positive_int("rank r", r)
    return sum(m.lora_params(r) for m in adapted_matrices(model, targets))


def adapter_bytes(count: int, dtype_bytes: float) -> int:
    """Size of a saved adapter: parameters × bytes each (2 for fp16/bf16, 4 for fp32)."""
    if not is_whole(count, 0):
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    if not (isinstance(dtype_bytes, numbers.Real) and math.isfinite(dtype_bytes) and dtype_bytes > 0):
        raise ValueError(f"dtype_bytes must be a positive number, got {dtype_bytes!r}")
    return math.ceil(count * dtype_bytes)


UNITS = ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"))


def human_bytes(n: float) -> str:
    """Decimal units, as checkpoint sizes and the paper are quoted: 37,748,736 bytes → "37.7 MB"."""
    for size, unit in UNITS:
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} bytes"


def _breakdown(total: int, trainable: int, weight_bytes: float, state_bytes: float) -> MemoryBreakdown:
    # mixed precision keeps an fp32 master copy of what is trained when the model is stored below fp32
    master = 4 if weight_bytes < 4 else 0
    return MemoryBreakdown(
        weights=math.ceil(total * weight_bytes),
        gradients=math.ceil(trainable * weight_bytes),
        master_weights=trainable * master,
        optimizer_states=math.ceil(trainable * 2 * state_bytes),
    )


def training_memory(model: str, targets: Iterable[str], r: int, *, weight_bytes: float = 2,
                    state_bytes: float = 4) -> TrainingMemory:
    """Memory for weights + gradients + AdamW states, full fine-tuning against LoRA (activations excluded).

    Assumptions (the usual mixed-precision Adam accounting, as in the ZeRO paper):
    - every weight, frozen or not, is held at ``weight_bytes`` (2 = fp16/bf16, 4 = fp32);
    - only trainable parameters get a gradient (at ``weight_bytes``) and two AdamW states
      (exp_avg, exp_avg_sq) at ``state_bytes`` each (4 = fp32);
    - when ``weight_bytes`` < 4 each trainable parameter also has a 4-byte fp32 master copy.
    So full fine-tuning costs 16 bytes per parameter at either precision, and LoRA costs
    ``weight_bytes`` per frozen parameter plus 16 per adapter parameter.
    """
    for name, v in (("weight_bytes", weight_bytes), ("state_bytes", state_bytes)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a positive number of bytes, got {v!r}")
    spec = get_model(model)
    lora = count_lora_params(model, targets, r)
    base = spec.base_params
    return TrainingMemory(
        full=_breakdown(base, base, weight_bytes, state_bytes),
        lora=_breakdown(base + lora, lora, weight_bytes, state_bytes),
        trainable_full=base,
        trainable_lora=lora,
    )


def known_model(name: str) -> ModelSpec | None:
    """The model of the table an adapter's ``base_model_name_or_path`` names, e.g. "meta-llama/Llama-2-7b-hf" is
    Llama-2-7B: the longest key of the table inside the name's last part, lowercased (None when no key is)."""
    last = str(name).rsplit("/", 1)[-1].lower().replace("_", "-").replace(" ", "-")
    found = [spec for key, spec in MODELS.items() if key in last]
    return max(found, key=lambda spec: len(spec.key)) if found else None
