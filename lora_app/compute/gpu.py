"""Scale's "which GPU" part: the memory of a training step for full fine-tuning, LoRA and QLoRA, card by card.

All numbers come from ``lora_core.gpu`` (an estimate whose every term its docstring states); this module
caches them per config and lays them out as tables.
"""
from __future__ import annotations

from typing import NamedTuple

import pandas as pd
import streamlit as st

from lora_core.gpu import CARDS, METHOD_NAMES, METHODS, GpuEstimate, Workload, gigabytes, gpu_estimate, largest_fitting
from lora_core.scale import MODELS, TARGETS

from ..config.scale import ScaleConfig

# the QLoRA paper's 65B setting: LoRA at r = 64 on every linear layer, NF4 with double quantization
PAPER_65B = dict(model="llama-65b", targets=TARGETS, r=64, workload=Workload(512, 1, True), double_quant=True)
PAPER_FULL_GB, PAPER_QLORA_GB = 780, 48  # "more than 780 GB" and "under 48 GB" (Dettmers et al. 2023)


class GpuNumbers(NamedTuple):
    estimate: GpuEstimate                  # the page's model, targets, r and workload
    largest: dict                          # (card key, method) → the largest model that fits, or None
    paper: GpuEstimate                     # the QLoRA paper's 65B setting


def _workload(cfg: ScaleConfig) -> Workload:
    return Workload(cfg.seq, cfg.batch, cfg.checkpointing)


@st.cache_data(max_entries=64, show_spinner=False)
def gpu_numbers(cfg: ScaleConfig) -> GpuNumbers:
    w = _workload(cfg)
    est = gpu_estimate(cfg.model, cfg.targets, cfg.r, w, double_quant=cfg.double_quant)
    largest = {(card.key, method): largest_fitting(MODELS, card, method, cfg.targets, cfg.r, w, cfg.double_quant)
               for card in CARDS for method in METHODS}
    paper = gpu_estimate(PAPER_65B["model"], PAPER_65B["targets"], PAPER_65B["r"], PAPER_65B["workload"],
                         double_quant=PAPER_65B["double_quant"])
    return GpuNumbers(est, largest, paper)


def _gb(n: float) -> str:
    return f"{gigabytes(n):,.1f} GB"


def breakdown_table(est: GpuEstimate) -> pd.DataFrame:
    """What each method holds, in GB (rounded up to the tenth)."""
    rows = []
    for method in METHODS:
        m = est.methods[method]
        rows.append({"method": METHOD_NAMES[method], "weights": _gb(m.weights), "adapter (with its gradient and "
                     "AdamW states)": _gb(m.adapter), "gradients": _gb(m.gradients), "AdamW states": _gb(m.optimizer),
                     "activations": _gb(m.activations), "CUDA reserve": _gb(m.reserve), "total": _gb(m.total)})
    return pd.DataFrame(rows).set_index("method")


def cards_table(est: GpuEstimate) -> pd.DataFrame:
    """Each card against each method: fits, with the room left, or does not, with how much more it needs."""
    rows = []
    for card in CARDS:
        row = {"card": card.name}
        for method in METHODS:
            total = est.methods[method].total
            room = card.memory - total
            row[METHOD_NAMES[method]] = (f"✓ fits ({gigabytes(room):,.1f} GB free)" if room >= 0
                                         else f"✗ needs {gigabytes(-room):,.1f} GB more")
        rows.append(row)
    return pd.DataFrame(rows).set_index("card")


def card_name(key: str) -> str:
    return next(card.name for card in CARDS if card.key == key)
