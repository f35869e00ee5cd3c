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

from ..echo import echo_list
from .explore import _as_int, quoted

R_CHOICES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SCALE_DEFAULTS = {"model": "gpt3-175b", "targets": ["q", "v"], "scale_r": 4}
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

    def url_params(self) -> dict[str, str]:
        return {"model": self.model, "targets": ",".join(self.targets) or "none", "scale_r": str(self.r)}


@dataclass(frozen=True)
class BenchConfig:
    """One training step of a d×k linear layer on n rows, full fine-tuning against LoRA at rank r."""
    d: int = 2048
    k: int = 2048
    r: int = 8
    n: int = 64
    repeats: int = 10


class PaperFigure(NamedTuple):
    """A figure the LoRA paper states, and what to compute to check it."""
    label: str
    kind: str                 # "params", "adapter_fp16", "model_fp16", "memory_lora" or "memory_full"
    model: str
    targets: tuple[str, ...]
    r: int
    paper: float              # the paper's value, in parameters or bytes
    paper_text: str
    tolerance: float          # the largest difference that still rounds to the paper's figure


PAPER_FIGURES = (
    PaperFigure("GPT-3 175B, r = 1 on q and v", "params", "gpt3-175b", ("q", "v"), 1, 4.7e6, "4.7M", 0.05e6),
    PaperFigure("GPT-3 175B, r = 8 on q and v", "params", "gpt3-175b", ("q", "v"), 8, 37.7e6, "37.7M", 0.05e6),
    PaperFigure("GPT-3 175B, r = 4 on q, k, v and o", "params", "gpt3-175b", ("q", "k", "v", "o"), 4, 37.7e6,
                "37.7M", 0.05e6),
    PaperFigure("GPT-3 175B checkpoint, the whole model in fp16", "model_fp16", "gpt3-175b", (), 4, 350e9,
                "about 350 GB", 5e9),
    PaperFigure("GPT-3 175B checkpoint, r = 4 on q and v in fp16", "adapter_fp16", "gpt3-175b", ("q", "v"), 4,
                35e6, "about 35 MB", 5e6),
    PaperFigure("GPT-3 175B training memory with LoRA, r = 4 on q and v", "memory_lora", "gpt3-175b", ("q", "v"),
                4, 350e9, "350 GB", 5e9),
    PaperFigure("RoBERTa-base, r = 8 on q and v", "params", "roberta-base", ("q", "v"), 8, 0.3e6, "0.3M", 0.05e6),
    PaperFigure("RoBERTa-large, r = 8 on q and v", "params", "roberta-large", ("q", "v"), 8, 0.8e6, "0.8M",
                0.05e6),
)


def _targets(names) -> tuple[str, ...]:
    return tuple(t for t in TARGETS if t in set(names))


def sanitize_scale(raw: dict) -> tuple[dict, list[str]]:
    """The page's URL values, checked like :func:`sanitize`; unknown names are dropped with a notice."""
    out, notices = {**SCALE_DEFAULTS, "targets": list(SCALE_DEFAULTS["targets"])}, []
    if "model" in raw:
        value = str(raw["model"]).strip().lower()
        if value in MODELS:
            out["model"] = value
        else:
            notices.append(f"{quoted('model', raw['model'])} is not a model on this page (choose {', '.join(MODELS)}); "
                           f"using model={out['model']}.")
    if "targets" in raw:
        names = [t.strip().lower() for t in str(raw["targets"]).split(",") if t.strip()]
        names = [] if names == ["none"] else names
        unknown = [t for t in names if t not in TARGETS]
        out["targets"] = list(_targets(names))
        if unknown:
            notices.append(f"{quoted('targets', raw['targets'])}: {echo_list(unknown)} is not a target (choose from "
                           f"{', '.join(TARGETS)}); using targets={','.join(out['targets']) or 'none'}.")
    if "scale_r" in raw:
        try:
            value = _as_int(raw["scale_r"])
            out["scale_r"] = min(R_CHOICES, key=lambda c: (abs(c - value), c))
            if out["scale_r"] != value:
                notices.append(f"{quoted('scale_r', raw['scale_r'])} is not an offered rank ({', '.join(map(str, R_CHOICES))}); "
                               f"using scale_r={out['scale_r']}.")
        except (TypeError, ValueError):
            notices.append(f"{quoted('scale_r', raw['scale_r'])} is not a whole number; using scale_r={out['scale_r']}.")
    return out, notices


def scale_config(values: dict) -> ScaleConfig:
    return ScaleConfig(values["model"], _targets(values["targets"] or ()), int(values["scale_r"]))


def bench_config(values: dict) -> BenchConfig:
    """The benchmark's sizes from the session, each snapped to its offered choices (validated on the server)."""
    picks = []
    for key, choices in (("bench_d", BENCH_SIZES), ("bench_k", BENCH_SIZES), ("bench_r", BENCH_RANKS),
                         ("bench_n", BENCH_TOKENS), ("bench_repeats", BENCH_REPEATS)):
        try:
            value = _as_int(values.get(key, BENCH_DEFAULTS[key]))
        except (TypeError, ValueError):
            value = BENCH_DEFAULTS[key]
        picks.append(min(choices, key=lambda c: (abs(c - value), c)))
    return BenchConfig(*picks)
