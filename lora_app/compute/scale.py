"""The Scale page's calls: counts and memory from formulas (cached), and the step benchmark (measured live)."""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pandas as pd
import streamlit as st

from lora_core.benchmark import BenchmarkResult, benchmark_step
from lora_core.scale import (
    MODELS,
    AdaptedMatrix,
    ModelSpec,
    TrainingMemory,
    adapted_matrices,
    adapter_bytes,
    count_lora_params,
    human_bytes,
    training_memory,
)

from ..config.scale import (
    COPIES,
    PAPER,
    PAPER_FIGURES,
    THROUGHPUT,
    WEIGHT_BYTES,
    BenchConfig,
    PaperFigure,
    ScaleConfig,
)
from .device import device_choice


class ScaleNumbers(NamedTuple):
    spec: ModelSpec
    matrices: tuple[AdaptedMatrix, ...]
    trainable: int
    share: float          # trainable / the base model's parameters
    adapter_fp16: int     # bytes of a saved adapter
    adapter_fp32: int
    model_fp16: int       # bytes of the whole model, what full fine-tuning saves per task
    memory: TrainingMemory


class PaperCheck(NamedTuple):
    figure: PaperFigure
    computed: float                 # what this app computes under the figure's conditions
    each: tuple[float, ...] = ()    # one value per configuration the paper names, when it names several

    @property
    def difference(self) -> float:
        """computed / paper − 1: +0.079 is 7.9% more than the paper's figure."""
        return self.computed / self.figure.paper - 1

    @property
    def verdict(self) -> str:
        """"yes" within the digits the paper prints, "roughly" where the paper itself says roughly, else "no"."""
        if abs(self.computed - self.figure.paper) <= self.figure.tolerance:
            return "yes"
        return "roughly" if self.figure.roughly and abs(self.difference) <= 0.1 else "no"


@st.cache_data(max_entries=256, show_spinner=False)
def scale_numbers(cfg: ScaleConfig) -> ScaleNumbers:
    # formulas only: r·(d_in + d_out) per adapted matrix (tests/test_scale.py checks them against PEFT)
    spec = MODELS[cfg.model]
    trainable = count_lora_params(cfg.model, cfg.targets, cfg.r)
    return ScaleNumbers(
        spec, tuple(adapted_matrices(cfg.model, cfg.targets)), trainable, trainable / spec.base_params,
        adapter_bytes(trainable, 2), adapter_bytes(trainable, 4), adapter_bytes(spec.base_params, 2),
        training_memory(cfg.model, cfg.targets, cfg.r, weight_bytes=WEIGHT_BYTES),
    )


def _value(fig: PaperFigure, targets: tuple[str, ...], r: int) -> float:
    n = scale_numbers(ScaleConfig(fig.model, targets, r))
    whole, adapter = n.model_fp16, n.adapter_fp16
    kinds = {
        "params": lambda: n.trainable, "model_params": lambda: n.spec.base_params,
        "model_fp16": lambda: whole, "adapter_fp16": lambda: adapter, "checkpoint_ratio": lambda: whole / adapter,
        "adapters_100": lambda: whole + COPIES * adapter, "models_100": lambda: COPIES * whole,
        "memory_full": lambda: n.memory.full.total, "memory_lora": lambda: n.memory.lora.total,
        "memory_ratio": lambda: n.memory.ratio,
        # the paper's own throughputs: the time per token falls by 1 − full/lora
        "paper_speedup": lambda: 1 - THROUGHPUT["full"] / THROUGHPUT["lora"],
    }
    return kinds[fig.kind]()


def paper_check(fig: PaperFigure) -> PaperCheck:
    """The figure computed for every configuration the paper names for it (the model alone when it names none)."""
    each = tuple(_value(fig, targets, r) for targets, r in fig.configs) or (_value(fig, (), 1),)
    return PaperCheck(fig, each[0], each if len(each) > 1 else ())


@st.cache_data(max_entries=1, show_spinner=False)
def paper_checks() -> tuple[PaperCheck, ...]:
    return tuple(paper_check(fig) for fig in PAPER_FIGURES)


def measure_step(cfg: BenchConfig, progress: Callable[[int, int], None]) -> BenchmarkResult:
    """Time one training step on this machine's device: never cached, since the point is to measure now.

    ``progress`` is called after every timed step; a rerun raises inside it, which cancels the run.
    """
    return benchmark_step(cfg.d, cfg.k, cfg.r, n=cfg.n, repeats=cfg.repeats, device=device_choice().device,
                          progress=progress)


# --- tables (pandas, for st.dataframe and st.table) ---------------------------------------------------

BYTE_KINDS = ("model_fp16", "adapter_fp16", "adapters_100", "models_100", "memory_full", "memory_lora")


def paper_value(kind: str, value: float) -> str:
    """A computed figure as the table shows it: counts in full, bytes in decimal units, ratios with ×."""
    if kind in BYTE_KINDS:
        return human_bytes(value) + (f" ({value / 2**20:.1f} MiB)" if kind == "adapter_fp16" else "")
    if kind == "checkpoint_ratio":
        return f"{value:,.0f}×"
    if kind == "memory_ratio":
        return f"{value:.1f}×"
    if kind == "paper_speedup":
        return f"{value:.1%} less time per token"
    return f"{value:,.0f} ({value / 1e6:,.{1 if value >= 1e6 else 2}f}M)"


def config_text(configs) -> str:
    """The paper's configurations in words: ((("q", "v"), 4),) → "r = 4 on W_q and W_v"."""
    def one(targets, r):
        names = [f"W_{t}" for t in targets]
        return f"r = {r} on " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1])
    return "; ".join(one(targets, r) for targets, r in configs)


def computed_text(check: PaperCheck) -> str:
    text = paper_value(check.figure.kind, check.computed)
    if check.each:  # every configuration the paper names gives the same figure, or the table says which does not
        same = len(set(check.each)) == 1
        text += " for each of them" if same else "; " + ", ".join(paper_value(check.figure.kind, v) for v in check.each)
    return text


VERDICTS = {"yes": "✓ yes", "roughly": "≈ roughly", "no": "✗ no"}


def verdict_text(check: PaperCheck) -> str:
    if check.verdict == "yes":
        return VERDICTS["yes"]
    return VERDICTS[check.verdict] + f", {check.difference:+.1%}".replace("-", "−")


def paper_table(checks: tuple[PaperCheck, ...], group: str) -> pd.DataFrame:
    """One table of the comparison: the paper's figure with its conditions beside this app's, row by row."""
    return pd.DataFrame([{
        "where in the paper": c.figure.source, "what the paper counts, and its conditions": c.figure.label,
        "the paper": c.figure.paper_text, "this app, same conditions": computed_text(c), "agrees": verdict_text(c),
    } for c in checks if c.figure.group == group])


def paper_notes(checks: tuple[PaperCheck, ...], group: str) -> list[str]:
    """Plain sentences where this app's model differs from the paper's, or where the paper leaves a gap."""
    # the paper's measured VRAM per parameter of its own count, for the note on what 1.2TB can hold
    facts = {"paper_bytes": PAPER["vram_full"].paper / PAPER["gpt3_full"].paper}
    return [f"**{c.figure.label.split(':')[0]}, {c.figure.paper_text} ({c.figure.source}):** "
            + c.figure.note.format(configs=config_text(c.figure.configs), **facts)
            for c in checks if c.figure.group == group and c.figure.note]


def matrices_table(num: ScaleNumbers, r: int) -> pd.DataFrame:
    """One row per adapted kind of matrix: its shape, how many the model has, and A + B's numbers."""
    return pd.DataFrame([{
        "module": m.module, "d_in × d_out": f"{m.d_in:,} × {m.d_out:,}", "copies": m.copies,
        "frozen numbers each": m.d_in * m.d_out, "LoRA numbers each, r·(d_in + d_out)": r * (m.d_in + m.d_out),
        "LoRA numbers in all": m.lora_params(r),
    } for m in num.matrices])


def claims_table(res: BenchmarkResult, num: ScaleNumbers, model_label: str) -> pd.DataFrame:
    """The seed's three claims beside what was just measured."""
    full, lora = res.full, res.lora
    return pd.DataFrame([
        {"the blog says": "Training speed: faster", "full fine-tuning": f"{1e3 * full.seconds:.2f} ms per step",
         "LoRA": f"{1e3 * lora.seconds:.2f} ms per step", "measured": f"{res.speedup:.1f}× faster"},
        {"the blog says": "Memory usage: low", "full fine-tuning": f"{human_bytes(full.state_bytes)} of gradients + AdamW states",
         "LoRA": human_bytes(lora.state_bytes), "measured": f"{full.state_bytes / lora.state_bytes:.0f}× less"},
        {"the blog says": "Storage: few MB of delta", "full fine-tuning": f"{human_bytes(full.param_bytes)} (W, fp32)",
         "LoRA": f"{human_bytes(lora.param_bytes)} (A and B, fp32)",
         "measured": f"{full.param_bytes / lora.param_bytes:.0f}× smaller; "
                     f"{model_label}: {human_bytes(num.adapter_fp16)} in fp16"},
    ])
