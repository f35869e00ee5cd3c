"""The Scale page's config: a real model, the adapted targets and the rank; and the live benchmark's sizes.

URL parameters: ``model`` (a key of ``lora_core.scale.MODELS``), ``targets`` (a comma list of q, k,
v, o, ffn, or ``none``) and ``scale_r``. The rank has its own name because the sidebar's ``r`` is the
small example's rank, bounded by its d and k (3 for the blog's example), while real models use 1…256.
The benchmark's sizes are kept for the session but not put in the URL: they describe a measurement
on one machine, not a view to share.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from lora_core.scale import MODELS, TARGETS

from . import fields
from .fields import BOOL, CHOICE, INT, NAMES, NEAREST, Field

R_CHOICES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SEQ_CHOICES = (128, 256, 512, 1024, 2048, 4096, 8192)
BATCH_CHOICES = (1, 2, 4, 8, 16, 32)
WEIGHT_BYTES = 2  # weights held in fp16/bf16 with an fp32 master copy of what is trained, as the paper trains

BENCH_SIZES = (256, 512, 1024, 2048, 4096, 8192)
BENCH_RANKS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
BENCH_TOKENS = (16, 32, 64, 128, 256, 512)
BENCH_REPEATS = (3, 5, 10, 20, 50)
# about a third of a second in all on a 2-core CPU: full fine-tuning's step is ~20 ms at 2048×2048
BENCH_DEFAULTS = {"bench_d": 2048, "bench_k": 2048, "bench_r": 8, "bench_n": 64, "bench_repeats": 10}


@dataclass(frozen=True)
class ScaleConfig:
    """What determines the Scale page's counts; caches are keyed on it."""
    model: str = "gpt3-175b"
    targets: tuple[str, ...] = ("q", "v")  # in TARGETS order
    r: int = 4

    seq: int = 512                          # which GPU: b sequences of s tokens
    batch: int = 1
    checkpointing: bool = True
    double_quant: bool = True                # QLoRA's absmax constants in 8 bits

    def url_params(self) -> dict[str, str]:
        return {"model": self.model, "targets": ",".join(self.targets) or "none", "scale_r": str(self.r),
                "gpu_seq": str(self.seq), "gpu_batch": str(self.batch), "gpu_ckpt": fields.format_value(self.checkpointing),
                "gpu_dq": fields.format_value(self.double_quant)}


@dataclass(frozen=True)
class BenchConfig:
    """One training step of a d×k linear layer on n rows, full fine-tuning against LoRA at rank r."""
    d: int = 2048
    k: int = 2048
    r: int = 8
    n: int = 64
    repeats: int = 10


QV, QKVO = ("q", "v"), ("q", "k", "v", "o")
COPIES = 100          # footnote 4 of the paper: 100 adapted models against 100 fine-tuned copies
THROUGHPUT = {"full": 32.5, "lora": 43.1}  # footnote 5: GPT-3 175B training tokens/s per V100 GPU


class PaperFigure(NamedTuple):
    """A figure the LoRA paper states: where, under which conditions, and what this app computes for it."""
    key: str
    group: str                # the page's table it sits in: "params", "files" or "memory"
    source: str               # where in the paper (Hu et al. 2021, arXiv 2106.09685 v2)
    label: str                # what the paper counts, under its own conditions
    paper_text: str           # the figure as the paper writes it
    paper: float              # its value, in parameters, bytes, a ratio or a fraction
    tolerance: float          # the largest difference the digits the paper prints allow
    kind: str                 # what to compute: see compute.scale.paper_checks
    model: str
    configs: tuple = ()       # the (targets, r) the paper names for this figure; each is computed
    roughly: bool = False     # the paper itself writes "roughly" or "≈"
    note: str = ""            # where this app's model differs, or what the paper leaves out ("" for neither)


_GPT3_BUILT = ("GPT-3's weights are not public: this app builds it as GPT-2's layout at GPT-3's size, with the "
               "output layer tied to the token embeddings. The paper does not say what its count includes.")

# the paper's conditions in its own notation: r_q = r_v = 8 is r = 8 on W_q and on W_v
PAPER_FIGURES = (
    PaperFigure("gpt3_full", "params", "Table 4", "GPT-3 175B, full fine-tuning: every parameter trained",
                "175,255.8M", 175_255.8e6, 0.05e6, "model_params", "gpt3-175b", note=_GPT3_BUILT),
    PaperFigure("gpt3_4.7m", "params", "Table 4; Appendix D.4; Table 15", "GPT-3 175B, LoRA: r_q = r_v = 1, or r_v = 2",
                "4.7M", 4.7e6, 0.05e6, "params", "gpt3-175b", ((QV, 1), (("v",), 2))),
    # "18M" and Table 15's "18.8M" are 18,874,368 cut, not rounded, to the digits printed
    PaperFigure("gpt3_18m", "params", "Section 7.1; Table 5",
                "GPT-3 175B, the 18M budget: r = 8 on one of W_q, W_k, W_v, W_o; r = 4 on W_q, W_k or on W_q, W_v; "
                "r = 2 on all four", "18M", 18e6, 1e6, "params", "gpt3-175b",
                tuple(((t,), 8) for t in QKVO) + ((("q", "k"), 4), (QV, 4), (QKVO, 2))),
    PaperFigure("gpt3_37.7m", "params", "Table 4; Appendix D.4; Table 15",
                "GPT-3 175B, LoRA: r_q = r_v = 8 (D.4, Table 15), or r_q = r_k = r_v = r_o = 4 (Table 15)",
                "37.7M", 37.7e6, 0.05e6, "params", "gpt3-175b", ((QV, 8), (QKVO, 4))),
    PaperFigure("gpt3_d4_slip", "params", "Appendix D.4",
                "GPT-3 175B, LoRA: r_q = r_k = r_v = r_o = 2, which D.4 gives as the other configuration of 37.7M",
                "37.7M", 37.7e6, 0.05e6, "params", "gpt3-175b", ((QKVO, 2),),
                note="The paper's own formula, 2 × matrices × d_model × r, gives this configuration half of 37.7M, "
                     "and so do its Table 5 (18M) and Table 15 (18.8M): the slip is in D.4. Table 15 gives 37.7M "
                     "to r = 4 on all four."),
    PaperFigure("roberta_base", "params", "Table 2; Table 9", "RoBERTa-base, LoRA: r_q = r_v = 8", "0.3M", 0.3e6,
                0.05e6, "params", "roberta-base", ((QV, 8),),
                note="The app counts A and B alone, without the classification head; the paper does not say, "
                     "and its figure matches this count."),
    PaperFigure("roberta_large", "params", "Table 2; Table 9", "RoBERTa-large, LoRA: r_q = r_v = 8", "0.8M", 0.8e6,
                0.05e6, "params", "roberta-large", ((QV, 8),)),
    PaperFigure("gpt2_medium", "params", "Table 3; Table 11", "GPT-2 medium, LoRA: r_q = r_v = 4", "0.35M", 0.35e6,
                0.005e6, "params", "gpt2-medium", ((QV, 4),),
                note="The paper's printed GPT-2 figures do not follow its own formula, which gives this app's "
                     "count. The app adapts GPT-2's fused W_q, W_k, W_v module (c_attn), which PEFT must adapt "
                     "whole; it has as many A and B numbers as W_q and W_v apart."),
    PaperFigure("gpt2_large", "params", "Table 3; Table 11", "GPT-2 large, LoRA: r_q = r_v = 4", "0.77M", 0.77e6,
                0.005e6, "params", "gpt2-large", ((QV, 4),)),
    PaperFigure("gpt3_checkpoint", "files", "Section 4.2; footnote 4", "GPT-3 175B checkpoint, the whole model",
                "350GB", 350e9, 5e9, "model_fp16", "gpt3-175b",
                note="The app stores each of its parameters in fp16, 2 bytes; the paper does not give the "
                     "precision of this figure."),
    PaperFigure("adapter_checkpoint", "files", "Section 4.2; Section 7.1",
                "GPT-3 175B LoRA checkpoint: r = 4, only W_q and W_v adapted (Section 7.1: the 18M budget is "
                "\"roughly 35MB if stored in FP16\")", "roughly 35MB", 35e6, 0.5e6, "adapter_fp16", "gpt3-175b",
                ((QV, 4),), roughly=True,
                note="2 bytes (fp16) for each number of A and B, in decimal megabytes."),
    PaperFigure("checkpoint_ratio", "files", "Section 4.2",
                "GPT-3 175B: the checkpoint \"reduced by roughly 10,000×\" at r = 4 on W_q and W_v",
                "roughly 10,000×", 1e4, 50, "checkpoint_ratio", "gpt3-175b", ((QV, 4),), roughly=True),
    PaperFigure("adapters_100", "files", "Footnote 4",
                f"{COPIES} adapted models on one GPT-3 175B: \"350GB + 35MB * 100 ≈ 354GB\"", "≈ 354GB", 354e9,
                0.5e9, "adapters_100", "gpt3-175b", ((QV, 4),), roughly=True),
    PaperFigure("models_100", "files", "Footnote 4",
                f"{COPIES} fully fine-tuned copies of GPT-3 175B: \"100 * 350GB ≈ 35TB\"", "≈ 35TB", 35e12, 0.5e12,
                "models_100", "gpt3-175b", roughly=True),
    PaperFigure("vram_full", "memory", "Section 4.2",
                "GPT-3 175B, VRAM during training, full fine-tuning with Adam: measured; the paper does not give "
                "its parts", "1.2TB", 1.2e12, 0.05e12, "memory_full", "gpt3-175b",
                note="The app counts 16 bytes for each parameter (the fp16 weight and gradient, an fp32 master "
                     "copy, AdamW's two fp32 states) and no activations. 1.2TB is {paper_bytes:.1f} bytes for each "
                     "of Table 4's 175,255.8M parameters, so the paper's run held less on its GPUs per parameter "
                     "than this count; it does not say how."),
    PaperFigure("vram_lora", "memory", "Section 4.2",
                "GPT-3 175B, VRAM during training with LoRA: measured; the paper names no rank or matrices for "
                "this figure", "350GB", 350e9, 5e9, "memory_lora", "gpt3-175b", ((QV, 4),),
                note="Computed at {configs}, the checkpoint's configuration: the frozen fp16 weights are nearly "
                     "all of it, so any small r gives about the same. Activations are not counted."),
    PaperFigure("vram_ratio", "memory", "Section 4.2; abstract",
                "GPT-3 175B, the VRAM ratio: 1.2TB / 350GB, how many times less LoRA needs (the abstract: "
                "\"by 3 times\")",
                f"{1.2e12 / 350e9:.1f}×", 1.2e12 / 350e9, 0.05, "memory_ratio", "gpt3-175b", ((QV, 4),),
                note="The app's ratio is larger because its full fine-tuning counts 16 bytes per parameter, "
                     "more than the paper measured."),
    PaperFigure("speedup", "memory", "Section 4.2; footnote 5",
                f"GPT-3 175B, training speed: {THROUGHPUT['full']} tokens/s per V100 GPU for full fine-tuning, "
                f"{THROUGHPUT['lora']} with LoRA", "25% speedup", 0.25, 0.005, "paper_speedup", "gpt3-175b",
                note="Not modelled by this app: computed from the paper's own two throughputs. The benchmark "
                     "below times one layer on this machine instead."),
)
PAPER = {fig.key: fig for fig in PAPER_FIGURES}


def _targets(names) -> tuple[str, ...]:
    return tuple(t for t in TARGETS if t in set(names))


FIELDS = (
    Field("model", CHOICE, "gpt3-175b", choices=tuple(MODELS), unreadable="is not a model on this page (choose {choices})"),
    Field("targets", NAMES, ("q", "v"), choices=TARGETS, unreadable="is not a target (choose from {choices})"),
    Field("scale_r", INT, 4, choices=R_CHOICES, fit=NEAREST, moved="is not an offered rank ({choices})"),
    # which GPU: the workload the activations depend on, and QLoRA's double quantization
    Field("gpu_seq", INT, 512, choices=SEQ_CHOICES, fit=NEAREST, moved="is not an offered length ({choices})"),
    Field("gpu_batch", INT, 1, choices=BATCH_CHOICES, fit=NEAREST, moved="is not an offered batch size ({choices})"),
    Field("gpu_ckpt", BOOL, True),
    Field("gpu_dq", BOOL, True),
)
# the benchmark's sizes, each snapped silently to its offered choices
BENCH_FIELDS = tuple(Field(key, INT, BENCH_DEFAULTS[key], choices=choices, fit=NEAREST) for key, choices in (
    ("bench_d", BENCH_SIZES), ("bench_k", BENCH_SIZES), ("bench_r", BENCH_RANKS), ("bench_n", BENCH_TOKENS),
    ("bench_repeats", BENCH_REPEATS)))


def sanitize_scale(raw: dict) -> tuple[dict, list[str]]:
    """The page's URL values, checked like :func:`sanitize`; unknown names are dropped with a notice."""
    return fields.sanitize(raw, FIELDS)


def scale_config(values: dict) -> ScaleConfig:
    v = {**fields.defaults(FIELDS), **values}
    return ScaleConfig(v["model"], _targets(v["targets"] or ()), int(v["scale_r"]), int(v["gpu_seq"]),
                       int(v["gpu_batch"]), bool(v["gpu_ckpt"]), bool(v["gpu_dq"]))


def bench_config(values: dict) -> BenchConfig:
    """The benchmark's sizes from the session, each snapped to its offered choices (validated on the server)."""
    sizes, _ = fields.sanitize(values, BENCH_FIELDS)
    return BenchConfig(*sizes.values())
