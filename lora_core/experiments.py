"""The Real model page's experiments: sets of runs of :func:`lora_core.finetune.finetune` that answer one question.

- the LoRA paper's Table 5 (:func:`budget_grid`): which matrices to adapt at a fixed number of trained values;
- its Table 6 (:func:`rank_sweep`): how small r can be;
- the family (:func:`family_grid`): LoRA, DoRA, QLoRA, PiSSA, LoRA+ and VeRA at one r and placement, VeRA also at
  the largest r the adapted matrices allow, as its paper gives it a far larger r than LoRA's;
- and the share of an update's energy in its top r directions (:func:`energy_share`).
"""
from __future__ import annotations

from dataclasses import replace

import torch

from .finetune import TARGET_TYPES, FinetuneSettings, module_names
from .rank import sigma_energy_share
from .tiny import TinyConfig
from .variants import VARIANTS

MAX_RANK = 64          # the widest side of any linear layer (the FFN's inner width): the search range of budget_rank


PLACEMENTS = (("q",), ("k",), ("v",), ("o",), ("q", "k"), ("q", "v"), ("v", "o"), ("q", "k", "v", "o"), ("ffn",))
BUDGET_RANK = 8  # r on a single attention type; r = 4 on two and r = 2 on four hold the numbers fixed


def budget_rank(cfg: TinyConfig, targets: tuple[str, ...]) -> int:
    """The r that keeps a placement's trainable numbers at the budget of r = 8 on one attention type.

    Attention types are all d×d, so r = 8/(number of types). The FFN's two matrices are wider; it gets
    the whole number r whose count is closest to the budget (ties go to the smaller r).
    """
    if all(t in ("q", "k", "v", "o") for t in targets):
        return max(1, BUDGET_RANK // len(targets))
    budget = BUDGET_RANK * sum(cfg.module_shape("q_proj"))
    per_r = sum(sum(cfg.module_shape(m)) for t in targets for m in TARGET_TYPES[t])
    return min(range(1, MAX_RANK + 1), key=lambda r: (abs(r * per_r - budget), r))


def budget_grid(cfg: TinyConfig, base: FinetuneSettings) -> list[FinetuneSettings]:
    """Table 5's experiment on this model: every placement at the fixed budget, then full fine-tuning."""
    runs = [replace(base, targets=p, r=budget_rank(cfg, p), full=False) for p in PLACEMENTS]
    return runs + [replace(base, full=True)]


RANKS = (1, 2, 4, 8, 16)


def rank_sweep(base: FinetuneSettings) -> list[FinetuneSettings]:
    """Table 6's experiment: the same placement at r = 1, 2, 4, 8 and 16, α fixed (so s = α/r changes)."""
    return [replace(base, r=r, full=False) for r in RANKS]


def energy_share(delta: torch.Tensor, r: int) -> float:
    """The share of ‖ΔW‖² (the sum of σᵢ²) in the top r singular directions."""
    return sigma_energy_share(torch.linalg.svdvals(delta.double()).tolist(), r)


def widest_rank(cfg: TinyConfig, targets: tuple[str, ...]) -> int:
    """The largest r the adapted matrices allow: the narrow side of the narrowest of them."""
    return min(min(cfg.module_shape(m)) for t in targets for m in TARGET_TYPES[t])


def family_grid(cfg: TinyConfig, base: FinetuneSettings) -> list[FinetuneSettings]:
    """Every variant at ``base``'s r, placement, learning rate, steps and seed; VeRA again at the widest r (when that
    is another r); then full fine-tuning."""
    lora = replace(base, full=False, variant="lora")
    runs = [replace(lora, variant=v) for v in VARIANTS]
    wide = widest_rank(cfg, lora.targets)
    if wide != lora.r:
        runs.append(replace(lora, variant="vera", r=wide))
    return runs + [replace(lora, full=True)]


def variant_trainable(cfg: TinyConfig, settings: FinetuneSettings) -> int:
    """The numbers a variant's run trains, counted from the shapes: r·(d_in + d_out) a layer, plus d_out for DoRA's
    m; r + d_out for VeRA (its A and B are frozen)."""
    total = 0
    for n in module_names(cfg, settings):
        d_in, d_out = cfg.module_shape(n.rsplit(".", 1)[1])
        total += settings.r + d_out if settings.variant == "vera" else (
            settings.r * (d_in + d_out) + (d_out if settings.variant == "dora" else 0))
    return total
