"""The LoRA family on one matrix: each variant trained on the same task, and what each one trains and stores.

Variants, in the seed's notation (X n×d, W d×k, A d×r, B r×k, s = α/r):

- ``lora``: Q = X·(W + s·A·B); A from PEFT's default (kaiming-uniform), B = 0.
- ``qlora``: the same adapter over W̃, W stored in NF4 (:mod:`lora_core.nf4`) and dequantized for the product.
- ``dora``: Q = X·(m ⊙ (W + s·A·B)/‖W + s·A·B‖) (:mod:`lora_core.dora`); m starts at ‖W‖ and trains too.
- ``pissa``: A and B start on W's top r singular directions and the base is the residual (:mod:`lora_core.pissa`).
- ``loraplus``: LoRA, with B's learning rate λ times A's (:mod:`lora_core.loraplus`).
- ``vera``: A and B random and frozen; d (r numbers) and b (k numbers) train (:mod:`lora_core.vera`).

Every run takes its gradients from torch's autograd and its steps from torch's single-tensor AdamW, op for op
(:func:`lora_core.training.adamw_update`), with one learning rate and weight decay for all (LoRA+ multiplies B's).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .checks import is_whole, positive_int
from .dora import column_norms, dora_forward
from .lora import init_peft_default, lora_forward, lora_scaling
from .loraplus import RATIO, loraplus_rates
from .nf4 import BLOCKSIZE, nf4_bits_per_weight, nf4_quantize
from .pissa import pissa_init
from .training import adamw_update, check_hyperparams, mse_loss
from .vera import D_INITIAL, vera_forward, vera_projections, vera_vectors

VARIANTS = ("lora", "qlora", "dora", "pissa", "loraplus", "vera")
NAMES = {"lora": "LoRA", "qlora": "QLoRA", "dora": "DoRA", "pissa": "PiSSA", "loraplus": "LoRA+", "vera": "VeRA"}


@dataclass(frozen=True)
class FamilySettings:
    """What every variant's run shares, and the settings only one variant reads."""
    r: int = 2
    alpha: float = 2.0
    lr: float = 1e-2
    steps: int = 100
    seed: int = 0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.01
    ratio: float = RATIO           # LoRA+: B's learning rate over A's
    vera_r: int = 0                # VeRA's rank; 0: the same r as the others
    d_initial: float = D_INITIAL   # VeRA: where d starts
    double_quant: bool = False     # QLoRA: 8-bit absmax constants (changes the bits stored, not the values)
    rslora: bool = False           # s = α/√r instead of α/r (PEFT's use_rslora)

    @property
    def scaling(self) -> float:
        return lora_scaling(self.alpha, self.r, self.rslora)


class FamilyRun(NamedTuple):
    variant: str
    losses: list[float]            # the loss before each step, then after the last: steps + 1 numbers
    trained: int                   # how many numbers the variant trains
    params: dict[str, torch.Tensor]  # the trained tensors after the last step (A, B, m, d, b)
    frozen: dict[str, torch.Tensor]  # what stays fixed: the base used in the product, and VeRA's A and B
    lrs: dict[str, float]          # each trained tensor's learning rate


def check_family_settings(s: FamilySettings, d: int, k: int) -> None:
    """ValueError naming the first setting no run can use."""
    if not is_whole(s.r, 1, min(d, k)):
        raise ValueError(f"rank r = {s.r!r} must be a whole number in 1…min(d, k) = {min(d, k)}")
    if not (math.isfinite(s.alpha) and s.alpha > 0):
        raise ValueError(f"α must be a positive number, got {s.alpha!r}")
    check_hyperparams(s.lr, s.betas, s.eps, s.weight_decay, s.steps)
    loraplus_rates(s.lr, s.ratio)
    if s.vera_r:
        positive_int("VeRA's rank", s.vera_r)
    if not math.isfinite(s.d_initial):
        raise ValueError(f"VeRA's d_initial must be a number, got {s.d_initial!r}")


def start(variant: str, W: torch.Tensor, s: FamilySettings) -> tuple[dict, dict]:
    """The variant's trained tensors and frozen ones at step 0, on W's dtype and device."""
    d, k = W.shape
    g = torch.Generator().manual_seed(s.seed)
    as_w = lambda t: t.to(dtype=W.dtype, device=W.device)
    if variant == "vera":
        r = s.vera_r or s.r
        A, B = vera_projections(d, k, r, key=s.seed)
        d_vec, b_vec = vera_vectors(r, k, s.d_initial, dtype=W.dtype)
        return {"d": as_w(d_vec), "b": as_w(b_vec)}, {"W": W, "A": as_w(A), "B": as_w(B)}
    if variant == "pissa":
        init = pissa_init(W, s.r, s.scaling)
        return {"A": init.A, "B": init.B}, {"W": init.W_res}
    A, B = (as_w(t) for t in init_peft_default(d, k, s.r, generator=g))
    if variant == "qlora":
        return {"A": A, "B": B}, {"W": as_w(nf4_quantize(W).dequantized)}
    if variant == "dora":
        return {"A": A, "B": B, "m": column_norms(W, A, B, s.scaling)}, {"W": W}
    if variant in ("lora", "loraplus"):
        return {"A": A, "B": B}, {"W": W}
    raise ValueError(f"unknown variant {variant!r}; the family is {', '.join(VARIANTS)}")


def forward(variant: str, X: torch.Tensor, params: dict, frozen: dict, s: FamilySettings) -> torch.Tensor:
    """Q for the variant, from its trained and frozen tensors."""
    W = frozen["W"]
    if variant == "vera":
        return vera_forward(X, W, frozen["A"], frozen["B"], params["d"], params["b"]).q
    if variant == "dora":
        return dora_forward(X, W, params["A"], params["B"], params["m"], s.scaling).q
    return lora_forward(X, W, params["A"], params["B"], s.scaling).q


def learning_rates(variant: str, names, s: FamilySettings) -> dict[str, float]:
    if variant != "loraplus":
        return {name: s.lr for name in names}
    rates = loraplus_rates(s.lr, s.ratio)
    return {name: rates.lr_A if name == "A" else rates.lr_B for name in names}


def family_run(variant: str, X: torch.Tensor, W: torch.Tensor, T: torch.Tensor, s: FamilySettings) -> FamilyRun:
    """Train one variant for ``s.steps`` AdamW steps on L = mean((Q − T)²); W (or its stand-in) stays frozen."""
    d, k = W.shape
    check_family_settings(s, d, k)
    if X.shape[1] != d or T.shape != (X.shape[0], k):
        raise ValueError(f"X is {tuple(X.shape)}, W {tuple(W.shape)}, T {tuple(T.shape)}; need n×d, d×k, n×k")
    params, frozen = start(variant, W, s)
    return train(variant, X, T, params, frozen, s)


def train(variant: str, X: torch.Tensor, T: torch.Tensor, params: dict, frozen: dict, s: FamilySettings,
          steps: int | None = None) -> FamilyRun:
    """``steps`` (default ``s.steps``) AdamW steps of the variant from the given trained and frozen tensors."""
    steps = s.steps if steps is None else steps
    check_hyperparams(s.lr, s.betas, s.eps, s.weight_decay, steps)
    params = dict(params)
    lrs = learning_rates(variant, params, s)
    moments = {name: (torch.zeros_like(p), torch.zeros_like(p)) for name, p in params.items()}
    beta1, beta2 = s.betas
    losses = []
    for t in range(1, steps + 2):
        leaves = {name: p.detach().requires_grad_(True) for name, p in params.items()}
        loss = mse_loss(forward(variant, X, leaves, frozen, s), T)
        losses.append(float(loss.detach()))
        if t == steps + 1 or not math.isfinite(losses[-1]):
            break
        grads = torch.autograd.grad(loss, list(leaves.values()))
        with torch.no_grad():
            for (name, p), grad in zip(params.items(), grads):
                m, v = moments[name]
                _, m, v, new = adamw_update(p, grad, m, v, t, lrs[name], beta1, beta2, s.eps, s.weight_decay)
                params[name], moments[name] = new, (m, v)
    trained = sum(p.numel() for p in params.values())
    return FamilyRun(variant, losses, trained, {n: p.detach() for n, p in params.items()}, frozen, lrs)


# --- what each variant trains and stores, at any size --------------------------------------------

class VariantSize(NamedTuple):
    trained: int          # numbers the optimizer updates (and keeps two AdamW moments for)
    base_bytes: float     # the frozen d×k base as held during training
    adapter_bytes: int    # what is saved and shipped: the trained numbers (VeRA: plus A and B, unless regenerated)
    frozen_extra: int     # VeRA's random A and B: frozen numbers beside the base


def variant_size(variant: str, d: int, k: int, r: int, *, base_bits: int = 16, adapter_bits: int = 32,
                 double_quant: bool = False, save_projection: bool = True) -> VariantSize:
    """One d×k matrix at rank r. The base is 16-bit unless QLoRA's NF4; adapters are saved in float32 (PEFT's
    ``autocast_adapter_dtype`` keeps trained adapter weights in float32 over a 16-bit base)."""
    for name, v in (("d", d), ("k", k), ("rank r", r)):
        positive_int(name, v)
    lora = r * (d + k)
    trained = {"lora": lora, "qlora": lora, "pissa": lora, "loraplus": lora, "dora": lora + k, "vera": r + k}
    if variant not in trained:
        raise ValueError(f"unknown variant {variant!r}; the family is {', '.join(VARIANTS)}")
    bits = nf4_bits_per_weight(BLOCKSIZE, double_quant) if variant == "qlora" else base_bits
    extra = r * (d + k) if variant == "vera" else 0
    stored = trained[variant] + (extra if save_projection else 0)
    return VariantSize(trained[variant], d * k * bits / 8, stored * adapter_bits // 8, extra)
