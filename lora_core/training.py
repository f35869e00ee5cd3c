"""Training one LoRA-adapted matrix: a target, the MSE loss, analytic gradients, AdamW step by step, full fine-tuning.

The run of many steps that the Training page scrubs through is :mod:`lora_core.trace`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .checks import is_whole
from .lora import check_lora_shapes

MAX_STEPS = 2000         # a trace keeps every step's state, so its length is capped
FINITE_CHECK_EVERY = 32  # how often the loop asks the device whether the loss is still finite


# --- the task: reach T = X·(W + ΔW*) --------------------------------------------------------

class Target(NamedTuple):
    delta_W_star: torch.Tensor  # d×k "true" update, rank exactly r*
    T: torch.Tensor             # n×k targets X·(W + ΔW*)


def make_target(X: torch.Tensor, W: torch.Tensor, r_star: int = 1, seed: int = 0,
                scale: float = 0.2) -> Target:
    """A seeded rank-r* update ΔW* and the outputs T it would produce; entries of ΔW* have std ≈ scale."""
    d, k = W.shape
    if not is_whole(r_star, 1, min(d, k)):
        raise ValueError(f"r* = {r_star!r} must be an integer in 1…min(d, k) = {min(d, k)}")
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be positive and finite, got {scale!r}")
    # drawn on the CPU in float64, so the same seed gives the same ΔW* on every device
    g = torch.Generator().manual_seed(seed)
    U = torch.randn(d, r_star, generator=g, dtype=torch.float64)  # d×r*
    V = torch.randn(r_star, k, generator=g, dtype=torch.float64)  # r*×k
    delta_W_star = (U @ V * (scale / math.sqrt(r_star))).to(device=X.device, dtype=X.dtype)
    return Target(delta_W_star, X @ (W + delta_W_star))


def mse_loss(Q: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """L = mean over all n·k entries of (Q − T)², exactly ``F.mse_loss``."""
    return F.mse_loss(Q, T)


def rank_r_floor(X: torch.Tensor, T: torch.Tensor, W: torch.Tensor, r: int) -> float:
    """The lowest loss any rank-r update can reach, for any target T.

    LoRA's output moves by X·M with rank M ≤ r, which is any rank-≤r matrix in X's column space.
    So split R = T − X·W into its projection P·R onto that space and the rest: the rest is out of
    reach, and the best rank-r approximation of P·R (truncated SVD, Eckart–Young) leaves Σ_{i>r} σᵢ².
    For a seeded target R = X·ΔW* already lies in the space and only the σ tail remains.
    """
    X64, R = X.double(), (T - X @ W).double()
    PR = X64 @ torch.linalg.lstsq(X64.cpu(), R.cpu(), driver="gelsd").solution.to(R.device)  # projection onto col(X)
    sigma = torch.linalg.svdvals(PR)
    return float((((R - PR) ** 2).sum() + (sigma[r:] ** 2).sum()) / R.numel())


# --- gradients, by hand ---------------------------------------------------------------------

class Grads(NamedTuple):
    q: torch.Tensor       # n×k, Q = X·W + s·(X·A)·B
    loss: torch.Tensor    # 0-dim MSE
    grad_q: torch.Tensor  # n×k, G = ∂L/∂Q = 2(Q − T)/(n·k)
    grad_A: torch.Tensor  # d×r, s·Xᵀ·G·Bᵀ
    grad_B: torch.Tensor  # r×k, s·(X·A)ᵀ·G
    grad_X: torch.Tensor  # n×d, G·(W + s·A·B)ᵀ; W itself gets none, it is frozen


def grads_from_base(X, W, base, A, B, T, scaling) -> Grads:
    """:func:`lora_grads` on checked shapes, given base = X·W."""
    # base = X·W never changes while W is frozen, so the trace computes it once
    XA = X @ A                                   # n×r, the adapter's bottleneck
    q = base + scaling * (XA @ B)                # n×k, same ops as lora_forward
    loss = mse_loss(q, T)
    G = (q - T) * (2.0 / q.numel())              # n×k, written as F.mse_loss's backward writes it
    Gs = G * scaling                             # the gradient entering the scaled low-rank path
    G_XA = Gs @ B.T                              # n×r, ∂L/∂(X·A)
    grad_A = X.T @ G_XA                          # d×r
    grad_B = XA.T @ Gs                           # r×k
    grad_X = G @ W.T + G_XA @ A.T                # n×d, G·(W + s·A·B)ᵀ without forming the d×k ΔW
    return Grads(q, loss, G, grad_A, grad_B, grad_X)


def train_grads(X, base, A, B, T, scaling):
    """What a training step needs, by the same ops as :func:`grads_from_base`: (q, loss, G, ∂L/∂A, ∂L/∂B)."""
    XA = X @ A
    q = base + scaling * (XA @ B)
    loss = mse_loss(q, T)
    G = (q - T) * (2.0 / q.numel())
    Gs = G * scaling
    return q, loss, G, X.T @ (Gs @ B.T), XA.T @ Gs


def lora_grads(X: torch.Tensor, W: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
               T: torch.Tensor, scaling: float = 1.0) -> Grads:
    """Loss and gradients of Q = X·(W + s·A·B) against T, from the chain rule (no autograd)."""
    check_lora_shapes(W, A, B)
    n, k = X.shape[0], W.shape[1]
    if X.shape[1] != W.shape[0] or T.shape != (n, k):
        raise ValueError(f"X is {tuple(X.shape)}, W {tuple(W.shape)}, T {tuple(T.shape)}; need n×d, d×k, n×k")
    return grads_from_base(X, W, X @ W, A, B, T, scaling)


# --- AdamW, stage by stage ------------------------------------------------------------------

class AdamWStage(NamedTuple):
    decayed: torch.Tensor     # θ·(1 − lr·λ): decoupled decay, from θ before this step
    exp_avg: torch.Tensor     # m = β1·m + (1 − β1)·g
    exp_avg_sq: torch.Tensor  # v = β2·v + (1 − β2)·g²
    m_hat: torch.Tensor       # m / (1 − β1ᵗ), bias-corrected
    v_hat: torch.Tensor       # v / (1 − β2ᵗ)
    update: torch.Tensor      # new − decayed ≈ −lr·m̂/(√v̂ + ε)
    new: torch.Tensor         # θ after the step


def check_hyperparams(lr: float, betas: Sequence[float], eps: float, weight_decay: float,
                      steps: int) -> None:
    """Raise ValueError naming the first AdamW setting torch would reject or the trace cannot hold."""
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"learning rate must be positive and finite, got lr = {lr!r}")
    if len(betas) != 2:
        raise ValueError(f"betas must be two numbers (β1, β2), got {betas!r}")
    for i, beta in enumerate(betas, start=1):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"β{i} must be in [0, 1), got β{i} = {beta!r}")
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be positive and finite, got eps = {eps!r}")
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight decay must be ≥ 0 and finite, got weight_decay = {weight_decay!r}")
    if not is_whole(steps, 1, MAX_STEPS):
        raise ValueError(f"steps must be an integer in 1…{MAX_STEPS}, got steps = {steps!r}")


def adamw_update(theta, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay):
    """torch's single-tensor AdamW, op for op, out of place: returns (decayed, m, v, new)."""
    decayed = theta * (1 - lr * weight_decay) if weight_decay != 0 else theta  # torch skips λ = 0 too
    m = torch.lerp(exp_avg, grad, 1 - beta1)
    v = torch.addcmul(exp_avg_sq * beta2, grad, grad, value=1 - beta2)
    # torch adds ε after dividing √v by √(1 − β2ᵗ), and folds 1/(1 − β1ᵗ) into the step size
    denom = (v.sqrt() / (1 - beta2 ** step) ** 0.5).add_(eps)
    new = torch.addcdiv(decayed, m, denom, value=-(lr / (1 - beta1 ** step)))
    return decayed, m, v, new


def adamw_step(theta: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor,
               exp_avg_sq: torch.Tensor, step: int, *, lr: float,
               betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
               weight_decay: float = 0.01) -> AdamWStage:
    """One AdamW step at t = ``step`` (1-based), every stage kept; inputs are not modified."""
    beta1, beta2 = betas
    decayed, m, v, new = adamw_update(theta, grad, exp_avg, exp_avg_sq, step,
                                     lr, beta1, beta2, eps, weight_decay)
    # m̂/(√v̂ + ε) is the textbook form; θ itself comes from torch's equivalent denom form above
    return AdamWStage(decayed, m, v, m / (1 - beta1 ** step), v / (1 - beta2 ** step), new - decayed, new)


def divergence_message(step: int, what: str) -> str:
    """What a trace says when ``what`` stopped being finite at ``step``."""
    kept = f"the trace stops at step {step - 1}, the last finite one" if step > 1 else "no step stayed finite"
    return f"training diverged at step {step}: {what} stopped being finite; {kept}. Try a smaller learning rate."


# --- full fine-tuning, for comparison ---------------------------------------------------------

class FullFinetuneTrace(NamedTuple):
    losses: list[float]          # L before each step, then L at the end (like Trace.losses)
    W: torch.Tensor              # d×k after the last finite step, CPU
    param_count: int             # d·k trainable numbers
    diverged_at: int | None
    message: str | None

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    @property
    def initial_loss(self) -> float:
        return self.losses[0]

    @property
    def final_loss(self) -> float:
        return self.losses[-1]


def full_finetune_trace(X: torch.Tensor, W: torch.Tensor, target: Target | torch.Tensor, *,
                        steps: int, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                        eps: float = 1e-8, weight_decay: float = 0.01) -> FullFinetuneTrace:
    """Train all of W with the same AdamW: Q = X·W, ∂L/∂W = Xᵀ·G."""
    check_hyperparams(lr, betas, eps, weight_decay, steps)
    T = target.T if isinstance(target, Target) else target
    if X.shape[1] != W.shape[0] or T.shape != (X.shape[0], W.shape[1]):
        raise ValueError(f"X is {tuple(X.shape)}, W {tuple(W.shape)}, T {tuple(T.shape)}; need n×d, d×k, n×k")
    beta1, beta2 = betas
    with torch.inference_mode():
        W_t = W.detach()
        m, v = torch.zeros_like(W_t), torch.zeros_like(W_t)
        q = X @ W_t
        losses = [float(mse_loss(q, T))]
        diverged_at = None if math.isfinite(losses[0]) else 1
        for t in range(1, steps + 1 if diverged_at is None else 1):
            grad_W = X.T @ ((q - T) * (2.0 / q.numel()))   # d×k, Xᵀ·G
            _, m_new, v_new, W_new = adamw_update(W_t, grad_W, m, v, t, lr, beta1, beta2, eps, weight_decay)
            q_new = X @ W_new
            # one sync a step keeps only W's last finite value; a non-finite W shows here, as 0·inf is NaN
            loss = float(mse_loss(q_new, T))
            if not math.isfinite(loss):
                diverged_at = t
                break
            W_t, m, v, q = W_new, m_new, v_new, q_new
            losses.append(loss)
    message = None if diverged_at is None else divergence_message(diverged_at, "the loss")
    d, k = W.shape
    return FullFinetuneTrace(losses, W_t.to("cpu", copy=True), d * k, diverged_at, message)
