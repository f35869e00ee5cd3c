"""The Real model page's calls into the core: the shared run store, the experiments' settings and their tables.

Runs are cached by their settings in :data:`lora_app.compute.jobs.STORE`, shared by every session of the
server; everything here reads runs from it and never trains (the worker in :mod:`lora_app.compute.jobs` does).
"""
from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np
import streamlit as st
import torch

from lora_core.adapter import adapters_zip_bytes
from lora_core.device import torch_threads
from lora_core.experiments import PLACEMENTS, RANKS, budget_grid, energy_share, family_grid, rank_sweep, variant_trainable
from lora_core.finetune import (
    HELD_OUT,
    TARGET_LABELS,
    FinetuneRun,
    FinetuneSettings,
    adapter_args,
    finetuned_model,
    module_names,
    predict,
    weight_updates,
)
from lora_core.tiny import ADAPT_TASKS, TASKS, held_out_set, layer_attention, parameter_count, task_targets, token_accuracy
from lora_core.variants import VARIANT_NAMES

from ..config.real import RealConfig
from . import jobs

base_model = jobs.base_model


def placement_label(targets: tuple[str, ...]) -> str:
    return "+".join(TARGET_LABELS[t] for t in targets)


def run_label(s: FinetuneSettings) -> str:
    if s.full:
        return "full fine-tuning"
    layers = "" if not s.layers else f" (layer {s.layers[0] + 1})"
    return f"{placement_label(s.targets)}{layers} · r = {s.r}"


def run(settings: FinetuneSettings) -> FinetuneRun | None:
    return jobs.STORE.get(settings)


def full_settings(settings: FinetuneSettings) -> FinetuneSettings:
    """The full fine-tuning baseline of a LoRA run: same task, learning rate, steps and seed."""
    return replace(settings, full=True)


def pair_settings(settings: FinetuneSettings) -> tuple[FinetuneSettings, ...]:
    """What Train runs: LoRA, then full fine-tuning as its baseline (full fine-tuning alone when that is chosen)."""
    return (settings,) if settings.full else (settings, full_settings(settings))


def pair_so_far(pair: tuple[FinetuneSettings, ...], live) -> tuple:
    """The pair's curves as they stand: the first run (stored or, while it trains, ``live``), and full fine-tuning's
    stored baseline beside it (None for full fine-tuning alone, or while it is missing)."""
    first = run(pair[0])
    if first is None and live is not None and live.settings == pair[0]:
        first = live
    return first, (None if len(pair) == 1 else run(pair[-1]))


def grid_settings(cfg: RealConfig) -> tuple[FinetuneSettings, ...]:
    """Table 5 on this model, for both tasks: every placement at the fixed budget, then full fine-tuning.

    The placements share the Fine-tune tab's α, rsLoRA, learning rate, steps and seed, on all layers.
    """
    base = replace(cfg.settings, layers=(), full=False)
    return tuple(s for task in ADAPT_TASKS for s in budget_grid(base_model().cfg, replace(base, task=task)))


def sweep_settings(cfg: RealConfig) -> tuple[FinetuneSettings, ...]:
    """Table 6 on this model, for both tasks: the sweep's placement at r = 1 … 16, then full fine-tuning."""
    base = replace(cfg.settings, targets=cfg.sweep, layers=(), full=False)
    out = []
    for task in ADAPT_TASKS:
        out += rank_sweep(replace(base, task=task)) + [replace(base, task=task, full=True)]
    return tuple(out)


class Grid(NamedTuple):
    rows: list[str]                 # placement labels, then "full fine-tuning"
    tasks: list[str]
    accuracy: np.ndarray            # rows × tasks, NaN where the run has not finished
    trainable: list[int]            # per row
    ranks: list[int]                # per row (0 for full fine-tuning)
    finished: int
    total: int

    @property
    def labels(self) -> list[str]:
        """Each row with its rank, as the grid's figure names it: "Q+V · r = 4"."""
        return [f"{row} · r = {r}" if r else row for row, r in zip(self.rows, self.ranks)]


def grid_table(cfg: RealConfig) -> Grid:
    settings = grid_settings(cfg)
    per_task = len(PLACEMENTS) + 1
    acc = np.full((per_task, len(ADAPT_TASKS)), np.nan)
    rows, trainable, ranks = [], [], []
    cfg_model = base_model().cfg
    for s in settings[:per_task]:
        rows.append("full fine-tuning" if s.full else placement_label(s.targets))
        ranks.append(0 if s.full else s.r)
        trainable.append(parameter_count(base_model()) if s.full else
                         s.r * sum(sum(cfg_model.module_shape(m.rsplit(".", 1)[1]))
                                   for m in module_names(cfg_model, s)))
    finished = 0
    for j in range(len(ADAPT_TASKS)):
        for i, s in enumerate(settings[j * per_task:(j + 1) * per_task]):
            r = run(s)
            if r is not None:
                acc[i, j] = r.accuracy
                finished += 1
    return Grid(rows, list(ADAPT_TASKS), acc, trainable, ranks, finished, len(settings))


def family_settings(cfg: RealConfig) -> tuple[FinetuneSettings, ...]:
    """The family on this model, for both tasks: each variant at the Fine-tune tab's r, placement, layers, α,
    learning rate, steps and seed (VeRA also at the widest r), then full fine-tuning."""
    return tuple(s for task in ADAPT_TASKS for s in family_grid(base_model().cfg, replace(cfg.settings, task=task)))


class Family(NamedTuple):
    rows: list[str]                 # "LoRA · r = 4", …, "full fine-tuning"
    variants: list[str]             # each row's variant ("full" for the baseline)
    tasks: list[str]
    accuracy: np.ndarray            # rows × tasks, NaN where the run has not finished
    trainable: list[int]            # per row
    frozen_bytes: np.ndarray        # rows × tasks: the frozen weights as stored (NaN pending)
    peak_bytes: np.ndarray          # rows × tasks: the run's measured peak memory
    wall_s: np.ndarray              # rows × tasks: the run's training time on this server
    losses: dict                    # (row, task) → the run's losses, for the finished runs
    finished: int
    total: int


def family_table(cfg: RealConfig) -> Family:
    settings = family_settings(cfg)
    per_task = len(settings) // len(ADAPT_TASKS)
    first = settings[:per_task]
    rows = [("full fine-tuning" if s.full else f"{VARIANT_NAMES[s.variant]} · r = {s.r}") for s in first]
    variants = ["full" if s.full else s.variant for s in first]
    shape = (per_task, len(ADAPT_TASKS))
    acc, frozen, peak, wall = (np.full(shape, np.nan) for _ in range(4))
    trainable = [parameter_count(base_model()) if s.full else variant_trainable(base_model().cfg, s) for s in first]
    losses, finished = {}, 0
    for j, task in enumerate(ADAPT_TASKS):
        for i, s in enumerate(settings[j * per_task:(j + 1) * per_task]):
            r = run(s)
            if r is None:
                continue
            acc[i, j], frozen[i, j], peak[i, j], wall[i, j] = r.accuracy, r.frozen_bytes, r.peak_bytes, r.wall_s
            losses[(i, task)] = r.losses
            finished += 1
    return Family(rows, variants, list(ADAPT_TASKS), acc, trainable, frozen, peak, wall, losses, finished,
                  len(settings))


class Sweep(NamedTuple):
    ranks: list[int]
    accuracy: dict[str, list[float]]   # task → accuracy per rank (NaN pending)
    full: dict[str, float]             # task → full fine-tuning's accuracy (absent while pending)
    finished: int
    total: int


def sweep_table(cfg: RealConfig) -> Sweep:
    settings = sweep_settings(cfg)
    per_task = len(RANKS) + 1
    acc, full, finished = {}, {}, 0
    for j, task in enumerate(ADAPT_TASKS):
        chunk = settings[j * per_task:(j + 1) * per_task]
        row = []
        for s in chunk[:-1]:
            r = run(s)
            row.append(np.nan if r is None else r.accuracy)
            finished += r is not None
        acc[task] = row
        r = run(chunk[-1])
        if r is not None:
            full[task] = r.accuracy
            finished += 1
    return Sweep(list(RANKS), acc, full, finished, len(settings))


class Spectrum(NamedTuple):
    name: str                      # e.g. "layers.0.q_proj"
    full_sigma: np.ndarray | None  # singular values of the full fine-tuning update W_after − W_before
    lora_sigma: np.ndarray | None  # of the LoRA update s·A·B (None where LoRA did not adapt this layer)
    full_energy: float             # share of ‖ΔW‖² in the top r directions, full fine-tuning
    lora_energy: float | None
    random_energy: float           # the same share for a random Gaussian matrix of this shape (the mean of 20)


def _random_energy(shape: tuple[int, int], r: int, draws: int = 20) -> float:
    g = torch.Generator().manual_seed(0)
    return float(np.mean([energy_share(torch.randn(*shape, generator=g, dtype=torch.float64), r)
                          for _ in range(draws)]))


@torch_threads(1)
def spectra(lora_run: FinetuneRun | None, full_run: FinetuneRun, r: int) -> list[Spectrum]:
    """Per linear layer: the real update's singular values, LoRA's beside them, and their top-r energy."""
    base = base_model()
    full = weight_updates(base, full_run)
    lora = weight_updates(base, lora_run) if lora_run is not None else {}
    out = []
    for name, d_full in full.items():
        sf = torch.linalg.svdvals(d_full).numpy()
        d_lora = lora.get(name)
        sl = torch.linalg.svdvals(d_lora).numpy() if d_lora is not None else None
        out.append(Spectrum(name, sf, sl, energy_share(d_full, r),
                            energy_share(d_lora, r) if d_lora is not None else None,
                            _random_energy(tuple(d_full.shape), r)))
    return out


class Outputs(NamedTuple):
    tokens: tuple[int, ...]
    target: list[int]
    base: list[int]
    adapted: list[int] | None


@torch_threads(1)
def outputs(cfg: RealConfig, lora_run: FinetuneRun | None) -> Outputs:
    x = torch.tensor([cfg.tokens])
    target = task_targets(cfg.settings.task, x)[0].tolist()
    b = predict(base_model(), None, x)[0].tolist()
    a = predict(base_model(), lora_run, x)[0].tolist() if lora_run is not None else None
    return Outputs(cfg.tokens, target, b, a)


@torch_threads(1)
def attention_maps(cfg: RealConfig, lora_run: FinetuneRun | None) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Each layer's attention weights (heads×n×n) on the typed sequence, before and after adaptation."""
    base = base_model()
    x = torch.tensor(cfg.tokens)
    before = [w.cpu().double().numpy() for w in layer_attention(base, x)]
    if lora_run is None:
        return before, None
    if lora_run.settings.full:
        after = layer_attention(finetuned_model(base, lora_run), x)
    else:
        after = layer_attention(finetuned_model(base, lora_run), x, *adapter_args(base, lora_run))
    return before, [w.cpu().double().numpy() for w in after]


def attention_change(before: np.ndarray, after: np.ndarray) -> float:
    """How far one head's map moved: the mean over its rows of the total-variation distance (half the L1)."""
    return float(0.5 * np.abs(after - before).sum(-1).mean())


@st.cache_data(max_entries=4, show_spinner=False)
def base_accuracies(digest: str) -> dict[str, float]:
    """The base model's held-out token accuracy on every task, once per base model (keyed by its digest)."""
    base = base_model()
    held = held_out_set(base.cfg, HELD_OUT).to(base.embed.weight.device)
    with torch_threads(1):
        return {task: token_accuracy(base, held, task) for task in TASKS}


def adapter_zip(lora_run: FinetuneRun) -> bytes:
    """The run's adapters as a zipped PEFT folder (a DoRA run's with its magnitudes and ``use_dora``)."""
    s = lora_run.settings
    return adapters_zip_bytes(lora_run.adapters, r=s.r, alpha=s.alpha, rslora=s.rslora,
                              magnitudes=dict(lora_run.magnitudes) or None)


def ffn_shapes() -> list[tuple[int, int]]:
    return [base_model().cfg.module_shape(m) for m in ("up_proj", "down_proj")]


def base_accuracy(task: str) -> float:
    return base_accuracies(jobs.base_digest())[task]


def task_description(task: str) -> str:
    return TASKS[task]
