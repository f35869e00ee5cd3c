"""The Scale page's calls: counts and memory from formulas (cached), and the step benchmark (measured live)."""
from __future__ import annotations

from typing import Callable, NamedTuple

import pandas as pd
import streamlit as st

from lora_core.scale import (
    MODELS, AdaptedMatrix, BenchmarkResult, ModelSpec, TrainingMemory, adapted_matrices, adapter_bytes,
    benchmark_step, count_lora_params, training_memory,
)

from ..config.scale import PAPER_FIGURES, WEIGHT_BYTES, BenchConfig, PaperFigure, ScaleConfig
from ..figures.scale import human_bytes
from .explore import device_choice


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
    computed: float

    @property
    def agrees(self) -> bool:
        return abs(self.computed - self.figure.paper) <= self.figure.tolerance


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


def _computed(fig: PaperFigure) -> float:
    n = scale_numbers(ScaleConfig(fig.model, fig.targets, fig.r))
    return {"params": n.trainable, "adapter_fp16": n.adapter_fp16, "model_fp16": n.model_fp16,
            "memory_lora": n.memory.lora.total, "memory_full": n.memory.full.total}[fig.kind]


@st.cache_data(max_entries=1, show_spinner=False)
def paper_checks() -> tuple[PaperCheck, ...]:
    return tuple(PaperCheck(fig, _computed(fig)) for fig in PAPER_FIGURES)


def measure_step(cfg: BenchConfig, progress: Callable[[int, int], None]) -> BenchmarkResult:
    """Time one training step on this machine's device: never cached, since the point is to measure now.

    ``progress`` is called after every timed step; a rerun raises inside it, which cancels the run.
    """
    return benchmark_step(cfg.d, cfg.k, cfg.r, n=cfg.n, repeats=cfg.repeats, device=device_choice().device,
                          progress=progress)


# --- tables (pandas, for st.dataframe) ---------------------------------------------------

def _paper_value(kind: str, value: float) -> str:
    return human_bytes(value) if kind not in ("params",) else f"{value:,.0f} ({value / 1e6:.3g}M)"


def matrices_table(num: ScaleNumbers, r: int) -> pd.DataFrame:
    """One row per adapted kind of matrix: its shape, how many the model has, and A + B's numbers."""
    return pd.DataFrame([{
        "module": m.module, "d_in × d_out": f"{m.d_in:,} × {m.d_out:,}", "copies": m.copies,
        "frozen numbers each": m.d_in * m.d_out, "LoRA numbers each, r·(d_in + d_out)": r * (m.d_in + m.d_out),
        "LoRA numbers in all": m.lora_params(r),
    } for m in num.matrices])


def paper_table(checks: tuple[PaperCheck, ...]) -> pd.DataFrame:
    return pd.DataFrame([{
        "the paper's figure": c.figure.label, "the paper says": c.figure.paper_text,
        "computed here": _paper_value(c.figure.kind, c.computed), "agrees": "✓ yes" if c.agrees else "✗ no",
    } for c in checks])


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
         "measured": f"{full.param_bytes / lora.param_bytes:.0f}× smaller; {model_label}: {human_bytes(num.adapter_fp16)} in fp16"},
    ])
