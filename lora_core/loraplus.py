"""LoRA+ (Hayou et al. 2024): B learns λ times faster than A.

The paper shows that with one learning rate for both factors, feature learning is inefficient for wide
layers, and that a larger rate for B fixes it; it recommends λ = 2⁴ = 16. PEFT's
``create_loraplus_optimizer(model, optimizer_cls, lr=…, loraplus_lr_ratio=λ)`` has no default for λ (its
documentation's example passes 16); it puts every lora_A in a group at ``lr`` and every lora_B (and every
1-D trained parameter, such as a DoRA magnitude) in a group at λ·lr, both with ``loraplus_weight_decay``
(0 unless given), which overrides the optimizer's own weight decay.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

RATIO = 16.0            # the paper's recommended λ, the one PEFT's documentation passes
WEIGHT_DECAY = 0.0      # PEFT's loraplus_weight_decay default


class LoraPlusRates(NamedTuple):
    lr_A: float
    lr_B: float


def loraplus_rates(lr: float, ratio: float = RATIO) -> LoraPlusRates:
    """A's learning rate and B's: lr and λ·lr. λ ≥ 1, as PEFT's documentation asks."""
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"the learning rate must be a positive number, got {lr!r}")
    if not (math.isfinite(ratio) and ratio >= 1):
        raise ValueError(f"the LoRA+ ratio λ must be at least 1, got {ratio!r}")
    return LoraPlusRates(lr, lr * ratio)


def loraplus_param_groups(A: torch.Tensor, B: torch.Tensor, lr: float, ratio: float = RATIO,
                          weight_decay: float = WEIGHT_DECAY, extra: tuple[torch.Tensor, ...] = ()) -> list[dict]:
    """torch.optim parameter groups as PEFT builds them: A at lr; B and any 1-D ``extra`` at λ·lr."""
    rates = loraplus_rates(lr, ratio)
    return [{"params": [A], "lr": rates.lr_A, "weight_decay": weight_decay},
            {"params": [B, *extra], "lr": rates.lr_B, "weight_decay": weight_decay}]
