"""A real (small) transformer: the base model that LoRA adapts on the Real model page.

An encoder of ``layers`` pre-norm blocks reads a sequence of ``seq_len`` digits and writes one digit
at each position. It was pre-trained to sort (``scripts/pretrain_tiny.py``); the shipped weights
are ``lora_core/assets/tiny_sort.safetensors`` with ``tiny_sort.json`` beside them.

Its linear layers carry the names PEFT users know — ``layers.{i}.q_proj``, ``k_proj``, ``v_proj``,
``o_proj``, ``up_proj``, ``down_proj`` — so ``LoraConfig(target_modules=["q_proj", "v_proj"])``
applies to it unchanged. They have no bias, so each is exactly X·W with W = ``weight``ᵀ (d_in×d_out),
the seed's row convention. The attention maths is :func:`lora_core.attention.attend`, the same
function the Attention page runs.

A forward pass can carry LoRA without touching the base: ``model(tokens, lora={name: (A, B)},
scaling=s)`` adds s·(x·A)·B to the named linear layers. With ``magnitudes={name: m}`` as well, a layer is
DoRA's (:mod:`lora_core.dora`): its output is scaled, column by column, by m/‖W + s·A·B‖, the norm held
constant for the gradient as PEFT holds it. The model's own tensors are never written.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .attention import attend
from .checks import is_whole

ASSETS = Path(__file__).with_name("assets")
BASE_WEIGHTS = ASSETS / "tiny_sort.safetensors"
BASE_CONFIG = ASSETS / "tiny_sort.json"

ATTENTION_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
FFN_MODULES = ("up_proj", "down_proj")
MODULE_TYPES = ATTENTION_MODULES + FFN_MODULES

LoraPairs = Mapping[str, tuple[torch.Tensor, torch.Tensor]]
Magnitudes = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class TinyConfig:
    """The architecture; the shipped ``tiny_sort.json`` holds these fields and the base task."""
    vocab: int = 10      # the digits 0…9
    seq_len: int = 8
    d_model: int = 32
    heads: int = 2
    layers: int = 2
    d_ff: int = 64
    base_task: str = "sort"

    @property
    def d_head(self) -> int:
        return self.d_model // self.heads

    def module_shape(self, module_type: str) -> tuple[int, int]:
        """(d_in, d_out) of a linear layer in the row convention X·W."""
        if module_type in ATTENTION_MODULES:
            return self.d_model, self.d_model
        if module_type == "up_proj":
            return self.d_model, self.d_ff
        if module_type == "down_proj":
            return self.d_ff, self.d_model
        raise ValueError(f"unknown module type {module_type!r}; choose from {', '.join(MODULE_TYPES)}")

    def module_names(self) -> tuple[str, ...]:
        """Every linear layer's full name, e.g. ``layers.0.q_proj``, in layer order."""
        return tuple(f"layers.{i}.{m}" for i in range(self.layers) for m in MODULE_TYPES)


class Block(nn.Module):
    """Pre-norm: x + attention(LN(x)), then x + FFN(LN(x)), with a GELU between up_proj and down_proj."""

    def __init__(self, cfg: TinyConfig):
        super().__init__()
        d, f = cfg.d_model, cfg.d_ff
        self.heads = cfg.heads
        self.attn_norm = nn.LayerNorm(d)
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.ffn_norm = nn.LayerNorm(d)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x: torch.Tensor, prefix: str, lora: LoraPairs, scaling: float,
                keep: list | None = None, magnitudes: Magnitudes | None = None) -> torch.Tensor:
        def proj(name: str, h: torch.Tensor) -> torch.Tensor:
            linear = getattr(self, name)
            out = linear(h)  # h·W
            pair = lora.get(f"{prefix}{name}")
            if pair is not None:
                A, B = pair
                out = out + scaling * ((h @ A) @ B)  # + s·(h·A)·B, never forming ΔW, as PEFT does
                m = (magnitudes or {}).get(f"{prefix}{name}")
                if m is not None:  # DoRA: each output column to length m, the norm a constant for the gradient
                    out = out * (m / torch.linalg.vector_norm(linear.weight.T + scaling * (A @ B), dim=0).detach())
            return out

        h = self.attn_norm(x)
        att = attend(proj("q_proj", h), proj("k_proj", h), proj("v_proj", h), self.heads)
        if keep is not None:
            keep.append(att.weights)
        x = x + proj("o_proj", att.context)
        return x + proj("down_proj", F.gelu(proj("up_proj", self.ffn_norm(x))))


class TinyTransformer(nn.Module):
    """Token and position embeddings, ``layers`` blocks, a final layer norm and an unembedding."""

    def __init__(self, cfg: TinyConfig = TinyConfig()):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab, cfg.d_model)
        self.pos = nn.Embedding(cfg.seq_len, cfg.d_model)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab, bias=False)

    def forward(self, tokens: torch.Tensor, lora: LoraPairs | None = None, scaling: float = 1.0,
                keep: list | None = None, magnitudes: Magnitudes | None = None) -> torch.Tensor:
        """Logits (…, seq_len, vocab); ``keep``, if a list, receives each layer's attention weights."""
        lora, magnitudes = dict(lora or {}), dict(magnitudes or {})
        unknown = sorted(set(lora) - set(self.cfg.module_names()))
        if unknown:
            raise ValueError(f"no linear layer named {unknown[0]!r} in this model")
        alone = sorted(set(magnitudes) - set(lora))
        if alone:
            raise ValueError(f"{alone[0]!r} has a DoRA magnitude but no LoRA pair")
        x = self.embed(tokens) + self.pos.weight[: tokens.shape[-1]]
        for i, block in enumerate(self.layers):
            x = block(x, f"layers.{i}.", lora, scaling, keep, magnitudes)
        return self.lm_head(self.norm(x))

    def weight(self, name: str) -> torch.Tensor:
        """W (d_in×d_out) of a named linear layer, a view of its ``weight``ᵀ."""
        return self.get_submodule(name).weight.T


# --- tasks -------------------------------------------------------------------------------------

# a fixed permutation of the digits: each digit d is written as PERMUTATION[d]
PERMUTATION = (3, 7, 0, 9, 5, 1, 8, 2, 6, 4)
TASKS = {
    "sort": "sort the digits, smallest first (the base task)",
    "reverse": "write the sequence backwards",
    "permute": "sort, then write each digit through a fixed code (0→3, 1→7, 2→0, …)",
}
ADAPT_TASKS = ("reverse", "permute")


def task_targets(task: str, tokens: torch.Tensor) -> torch.Tensor:
    """The right output for each input sequence (…×n) under ``task``."""
    if task == "sort":
        return tokens.sort(dim=-1).values
    if task == "reverse":
        return tokens.flip(-1)
    if task == "permute":
        return torch.tensor(PERMUTATION, device=tokens.device)[tokens.sort(dim=-1).values]
    raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")


def _held_out(tokens: torch.Tensor) -> torch.Tensor:
    # a fixed tenth of all 10⁸ sequences is held out of every training batch: those whose digits,
    # read as a number, are divisible by 10 after a fixed mixing — a rule, so no list is stored
    n = tokens.shape[-1]
    weights = torch.tensor([pow(31, i, 1_000_003) for i in range(n)], device=tokens.device)
    return (tokens * weights).sum(-1) % 1_000_003 % 10 == 0


def train_batch(cfg: TinyConfig, generator: torch.Generator, size: int) -> torch.Tensor:
    """``size`` random sequences, none of them held out (drawn on the CPU, so every device sees the same)."""
    out = torch.empty(0, cfg.seq_len, dtype=torch.int64)
    while out.shape[0] < size:
        draw = torch.randint(0, cfg.vocab, (2 * size, cfg.seq_len), generator=generator)
        out = torch.cat([out, draw[~_held_out(draw)]])
    return out[:size]


def held_out_set(cfg: TinyConfig, size: int = 2000, seed: int = 12345) -> torch.Tensor:
    """A fixed set of held-out sequences, never in any training batch."""
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(0, cfg.seq_len, dtype=torch.int64)
    while out.shape[0] < size:
        draw = torch.randint(0, cfg.vocab, (20 * size, cfg.seq_len), generator=g)
        out = torch.cat([out, draw[_held_out(draw)]])
    return out[:size]


def token_accuracy(model: TinyTransformer, tokens: torch.Tensor, task: str, lora: LoraPairs | None = None,
                   scaling: float = 1.0) -> float:
    """The share of output positions where the model writes the right digit."""
    with torch.no_grad():
        pred = model(tokens, lora, scaling).argmax(-1)
    return float((pred == task_targets(task, tokens)).double().mean())


# --- the shipped base model --------------------------------------------------------------------

class ModelFileError(ValueError):
    """A base-model file that does not fit the config beside it, or a config this code cannot build."""


def read_config(path: Path | str = BASE_CONFIG) -> tuple[TinyConfig, dict]:
    """The architecture and the pre-training record (seed, steps, time, accuracy) from the JSON file."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"cannot read the model config {Path(path).name}: {e}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("architecture"), dict):
        raise ModelFileError(f"{Path(path).name} has no \"architecture\" object")
    arch = raw["architecture"]
    names = {f.name for f in fields(TinyConfig)}
    extra, missing = sorted(set(arch) - names), sorted(names - set(arch))
    if extra or missing:
        raise ModelFileError(f"{Path(path).name}: architecture fields {', '.join(extra)} are unknown"
                             if extra else f"{Path(path).name}: architecture lacks {', '.join(missing)}")
    for key in names - {"base_task"}:
        v = arch[key]
        if not is_whole(v, 1, 4096, exact=True):
            raise ModelFileError(f"{Path(path).name}: {key} = {v!r} is not a whole number in 1…4096")
    cfg = TinyConfig(**arch)
    if cfg.d_model % cfg.heads:
        raise ModelFileError(f"{Path(path).name}: d_model = {cfg.d_model} is not divisible by {cfg.heads} heads")
    if cfg.base_task not in TASKS:
        raise ModelFileError(f"{Path(path).name}: base task {cfg.base_task!r} is not one of {', '.join(TASKS)}")
    return cfg, raw.get("pretraining", {})


def load_base_model(weights: Path | str = BASE_WEIGHTS, config: Path | str = BASE_CONFIG,
                    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> TinyTransformer:
    """The shipped pre-trained model as a plain ``nn.Module``, frozen, in eval mode.

    Refuses, with a message naming the tensor, a file whose tensors' names or shapes differ from
    what the config builds, or whose values are not finite.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    cfg, _ = read_config(config)
    model = TinyTransformer(cfg)
    try:
        state = load_file(str(weights))
    except (OSError, SafetensorError) as e:
        raise ModelFileError(f"cannot read the model weights {Path(weights).name}: {e}") from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing:
        raise ModelFileError(f"{Path(weights).name} lacks the tensor {missing[0]} that the config's model needs")
    if extra:
        raise ModelFileError(f"{Path(weights).name} holds a tensor {extra[0]} that the config's model does not have")
    for key, shape in expected.items():
        got = tuple(state[key].shape)
        if got != shape:
            raise ModelFileError(f"{key} is {'×'.join(map(str, got))} in {Path(weights).name} but the config "
                                 f"needs {'×'.join(map(str, shape))}")
        if not state[key].is_floating_point() or not torch.isfinite(state[key]).all():
            raise ModelFileError(f"{key} in {Path(weights).name} holds a value that is not a finite number")
    model.load_state_dict(state)
    model.requires_grad_(False)
    return model.to(device=device, dtype=dtype).eval()


def model_digest(model: TinyTransformer) -> str:
    """A short fingerprint of the weights: saved runs name the base they were trained on."""
    h = hashlib.sha256(json.dumps(asdict(model.cfg), sort_keys=True).encode())
    for key, t in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(t.detach().to("cpu", torch.float64).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def parameter_count(model: TinyTransformer) -> int:
    return sum(p.numel() for p in model.parameters())


def layer_attention(model: TinyTransformer, tokens: torch.Tensor, lora: LoraPairs | None = None,
                    scaling: float = 1.0, magnitudes: Magnitudes | None = None) -> list[torch.Tensor]:
    """Each layer's attention weights (heads×n×n) for one sequence."""
    keep: list = []
    with torch.no_grad():
        model(tokens.unsqueeze(0), lora, scaling, keep, magnitudes)
    return [w[0] for w in keep]

