"""Training one LoRA-adapted matrix: a target, the MSE loss, analytic gradients, AdamW step by step, and the trace."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .lora import _check_shapes, param_counts

MAX_STEPS = 2000        # a trace keeps every step's state, so its length is capped
_CHECK_EVERY = 32       # how often the loop asks the device whether the loss is still finite


# --- the task: reach T = X·(W + ΔW*) --------------------------------------------------------

class Target(NamedTuple):
    delta_W_star: torch.Tensor  # d×k "true" update, rank exactly r*
    T: torch.Tensor             # n×k targets X·(W + ΔW*)


def make_target(X: torch.Tensor, W: torch.Tensor, r_star: int = 1, seed: int = 0,
                scale: float = 0.2) -> Target:
    """A seeded rank-r* update ΔW* and the outputs T it would produce; entries of ΔW* have std ≈ scale."""
    d, k = W.shape
    if isinstance(r_star, bool) or int(r_star) != r_star or not 1 <= r_star <= min(d, k):
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


def _grads(X, W, base, A, B, T, scaling) -> Grads:
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


def _train_grads(X, base, A, B, T, scaling):
    """What a training step needs, by the same ops as :func:`_grads`: (q, loss, G, ∂L/∂A, ∂L/∂B)."""
    XA = X @ A
    q = base + scaling * (XA @ B)
    loss = mse_loss(q, T)
    G = (q - T) * (2.0 / q.numel())
    Gs = G * scaling
    return q, loss, G, X.T @ (Gs @ B.T), XA.T @ Gs


def lora_grads(X: torch.Tensor, W: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
               T: torch.Tensor, scaling: float = 1.0) -> Grads:
    """Loss and gradients of Q = X·(W + s·A·B) against T, from the chain rule (no autograd)."""
    _check_shapes(W, A, B)
    n, k = X.shape[0], W.shape[1]
    if X.shape[1] != W.shape[0] or T.shape != (n, k):
        raise ValueError(f"X is {tuple(X.shape)}, W {tuple(W.shape)}, T {tuple(T.shape)}; need n×d, d×k, n×k")
    return _grads(X, W, X @ W, A, B, T, scaling)


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
    if isinstance(steps, bool) or int(steps) != steps or not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer in 1…{MAX_STEPS}, got steps = {steps!r}")


def _adamw_core(theta, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay):
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
    decayed, m, v, new = _adamw_core(theta, grad, exp_avg, exp_avg_sq, step,
                                     lr, beta1, beta2, eps, weight_decay)
    # m̂/(√v̂ + ε) is the textbook form; θ itself comes from torch's equivalent denom form above
    return AdamWStage(decayed, m, v, m / (1 - beta1 ** step), v / (1 - beta2 ** step), new - decayed, new)


# --- the trace ------------------------------------------------------------------------------

class StepRecord(NamedTuple):
    step: int                   # t, 1-based
    loss: float                 # L before this step's update
    q: torch.Tensor             # n×k
    grad_q: torch.Tensor        # n×k
    grad_A: torch.Tensor        # d×r
    grad_B: torch.Tensor        # r×k
    grad_X: torch.Tensor        # n×d
    decayed_A: torch.Tensor
    exp_avg_A: torch.Tensor
    exp_avg_sq_A: torch.Tensor
    m_hat_A: torch.Tensor
    v_hat_A: torch.Tensor
    update_A: torch.Tensor
    A: torch.Tensor             # after the update
    decayed_B: torch.Tensor
    exp_avg_B: torch.Tensor
    exp_avg_sq_B: torch.Tensor
    m_hat_B: torch.Tensor
    v_hat_B: torch.Tensor
    update_B: torch.Tensor
    B: torch.Tensor             # after the update

    @property
    def stage_A(self) -> AdamWStage:
        return AdamWStage(self.decayed_A, self.exp_avg_A, self.exp_avg_sq_A, self.m_hat_A,
                          self.v_hat_A, self.update_A, self.A)

    @property
    def stage_B(self) -> AdamWStage:
        return AdamWStage(self.decayed_B, self.exp_avg_B, self.exp_avg_sq_B, self.m_hat_B,
                          self.v_hat_B, self.update_B, self.B)


# what AdamW carries from one step to the next: all a trace stores per step
STATE_FIELDS = ("A", "B", "exp_avg_A", "exp_avg_sq_A", "exp_avg_B", "exp_avg_sq_B")


def state_before(states, A0, B0, step: int) -> dict[str, torch.Tensor]:
    """What goes into step ``step`` (1-based): the start, with m = v = 0, or what the step before left.

    ``states`` maps :data:`STATE_FIELDS` to per-step stacks (tensors or arrays); the result is CPU tensors.
    """
    def copy(x) -> torch.Tensor:
        return x.detach().clone() if torch.is_tensor(x) else torch.tensor(x)

    if step == 1:
        A, B = copy(A0), copy(B0)
        return {"A": A, "B": B, "exp_avg_A": torch.zeros_like(A), "exp_avg_sq_A": torch.zeros_like(A),
                "exp_avg_B": torch.zeros_like(B), "exp_avg_sq_B": torch.zeros_like(B)}
    return {f: copy(states[f][step - 2]) for f in STATE_FIELDS}


def replay_step(X: torch.Tensor, W: torch.Tensor, T: torch.Tensor, before: dict[str, torch.Tensor], step: int, *,
                scaling: float, lr: float, betas: tuple[float, float], eps: float, weight_decay: float) -> StepRecord:
    """Step ``step`` (1-based) of a run in full, from the state going into it (A, B and their m, v).

    The same operations as :func:`adamw_trace`'s loop, in the same order, so on the same device the
    numbers are the loop's own, bit for bit. ``before`` maps :data:`STATE_FIELDS` to tensors.
    """
    beta1, beta2 = betas
    hp = (lr, beta1, beta2, eps, weight_decay)
    with torch.inference_mode():
        g = _grads(X, W, X @ W, before["A"], before["B"], T, scaling)
        dA, mA, vA, A = _adamw_core(before["A"], g.grad_A, before["exp_avg_A"], before["exp_avg_sq_A"], step, *hp)
        dB, mB, vB, B = _adamw_core(before["B"], g.grad_B, before["exp_avg_B"], before["exp_avg_sq_B"], step, *hp)
    c1, c2 = 1 - beta1 ** step, 1 - beta2 ** step
    fields = [g.q, g.grad_q, g.grad_A, g.grad_B, g.grad_X,
              dA, mA, vA, mA / c1, vA / c2, A - dA, A, dB, mB, vB, mB / c1, vB / c2, B - dB, B]
    return StepRecord(step, float(g.loss), *(f.clone() for f in fields))  # clone: ordinary tensors, not inference ones


@dataclass(frozen=True, eq=False)
class Trace(Sequence):
    """One LoRA training run: a sequence of :class:`StepRecord` (CPU tensors), plus how it ended.

    It stores what AdamW carries from step to step (A, B and their moments m and v, one row per
    step) and the losses. Everything else of a step (Q, the gradients, each AdamW stage) is
    recomputed when the step is read, by :func:`replay_step` on the device the run used, so it is
    what the loop computed without keeping n×k and n×d intermediates for every step.
    """

    states: dict[str, torch.Tensor]  # STATE_FIELDS → (steps, …) on the CPU: the state after each step
    step_losses: tuple[float, ...]   # L before each step
    initial_loss: float              # L at the initial A, B
    final_loss: float                # L at the final A, B
    diverged_at: int | None          # first step whose values were not finite
    message: str | None              # what went wrong, for the page to show
    param_count: int                 # r·(d + k) trainable numbers
    A0: torch.Tensor                 # the starting A, B (CPU), so an empty trace still has them
    B0: torch.Tensor
    inputs: dict[str, torch.Tensor]  # X, W, T on the run's device, for replaying a step
    hyper: dict                      # scaling, lr, betas, eps, weight_decay

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    def __len__(self) -> int:
        return len(self.step_losses)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(f"step index {i} out of range for a trace of {len(self)} steps")
        i %= len(self)
        device = self.inputs["X"].device
        before = {f: v.to(device) for f, v in state_before(self.states, self.A0, self.B0, i + 1).items()}
        rec = replay_step(self.inputs["X"], self.inputs["W"], self.inputs["T"], before, i + 1, **self.hyper)
        cpu = rec._replace(**{f: getattr(rec, f).to("cpu") for f in StepRecord._fields[2:]})
        # the state it hands on is the loop's own (identical when replayed on the same device)
        return cpu._replace(loss=self.step_losses[i], **{f: self.states[f][i] for f in STATE_FIELDS})

    def __iter__(self) -> Iterator[StepRecord]:
        return (self[i] for i in range(len(self)))

    @property
    def losses(self) -> list[float]:
        """L before each step, then L at the end: the loss curve, one point longer than the trace."""
        return [*self.step_losses, self.final_loss]

    @property
    def A(self) -> torch.Tensor:
        return self.states["A"][-1] if len(self) else self.A0

    @property
    def B(self) -> torch.Tensor:
        return self.states["B"][-1] if len(self) else self.B0

    def __repr__(self) -> str:
        end = f"diverged at step {self.diverged_at}" if self.diverged else f"final loss {self.final_loss:.3g}"
        return f"Trace({len(self)} steps, initial loss {self.initial_loss:.3g}, {end})"


def _first_bad(stacks: dict[str, torch.Tensor]) -> tuple[int, list[str]] | None:
    """The first step (0-based) with a non-finite value in any of ``stacks``, and those fields."""
    finite = {}
    for name, s in stacks.items():
        flat = s.reshape(s.shape[0], -1)
        # max and min carry NaN and ±inf through; two read-only passes beat isfinite's full-size mask
        finite[name] = torch.isfinite(flat.amax(dim=1)) & torch.isfinite(flat.amin(dim=1))
    ok = torch.stack(list(finite.values())).all(dim=0)
    bad = (~ok).nonzero()
    if not len(bad):
        return None
    i = int(bad[0])
    return i, [name for name, f in finite.items() if not f[i]]


def _divergence_message(step: int, what: str) -> str:
    kept = f"the trace stops at step {step - 1}, the last finite one" if step > 1 else "no step stayed finite"
    return f"training diverged at step {step}: {what} stopped being finite; {kept}. Try a smaller learning rate."


def adamw_trace(X: torch.Tensor, W: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                target: Target | torch.Tensor, *, steps: int, lr: float,
                betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                weight_decay: float = 0.01, scaling: float = 1.0) -> Trace:
    """Train A and B (W frozen) with AdamW for ``steps`` steps; every step can be read back in full.

    Runs on the inputs' device. The loop keeps only what the next step needs (A, B, m, v) and the
    loss; reading ``trace[t]`` replays step t + 1 from that state (see :class:`Trace`). Never raises
    on divergence: the trace stops at the last finite step and says where it went wrong.
    """
    check_hyperparams(lr, betas, eps, weight_decay, steps)
    T = target.T if isinstance(target, Target) else target
    lora_grads(X, W, A, B, T, scaling)  # validates every shape once, up front
    beta1, beta2 = betas
    hp = (lr, beta1, beta2, eps, weight_decay)
    rows, losses = [], []
    with torch.inference_mode():  # no autograd bookkeeping: every gradient here is written out
        base = X @ W
        mA, vA, mB, vB = (torch.zeros_like(p) for p in (A, A, B, B))
        A_t, B_t = A.detach(), B.detach()
        for t in range(1, steps + 1):
            g = _train_grads(X, base, A_t, B_t, T, scaling)
            _, mA, vA, A_t = _adamw_core(A_t, g[3], mA, vA, t, *hp)
            _, mB, vB, B_t = _adamw_core(B_t, g[4], mB, vB, t, *hp)
            losses.append(g[1])
            rows.append((A_t, B_t, mA, vA, mB, vB))  # in STATE_FIELDS order
            # a non-finite loss stays non-finite (NaN spreads through every product), so stop early
            if t % _CHECK_EVERY == 0 and not torch.isfinite(g[1]):
                break
        final_loss = mse_loss(base + scaling * ((X @ A_t) @ B_t), T)
    # stacking outside inference mode gives ordinary tensors, and one copy to the CPU per field
    columns = list(zip(*rows))
    del rows
    states = {name: torch.stack(columns.pop(0)) for name in STATE_FIELDS}  # pop frees each column once stacked
    loss_before = torch.stack(losses)
    n_run = loss_before.shape[0]
    # step t is kept when the loss going into it, its new state and the loss at that state are finite
    loss_after = torch.cat([loss_before[1:], final_loss.reshape(1)])
    bad = _first_bad({"loss": loss_before.reshape(-1, 1), "loss after the update": loss_after.reshape(-1, 1), **states})
    keep = n_run if bad is None else bad[0]
    hyper = dict(scaling=scaling, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
    trace = Trace({k: v[:keep].cpu() for k, v in states.items()}, tuple(loss_before[:keep].tolist()),
                  float(loss_before[0]), float(loss_after[keep - 1]) if keep else float(loss_before[0]),
                  None if bad is None else keep + 1,
                  None if bad is None else _divergence_message(keep + 1, ", ".join(bad[1])),
                  param_counts(*W.shape, A.shape[1]).lora,
                  A.detach().to("cpu", copy=True), B.detach().to("cpu", copy=True),
                  {"X": X.detach(), "W": W.detach(), "T": T.detach()}, hyper)
    # what a replay adds (Q, ∂L/∂X) overflows only after the state does, but a step is shown in full or not at all
    while len(trace) and not _all_finite(trace[len(trace) - 1]):
        keep = len(trace) - 1
        trace = dataclasses.replace(
            trace, states={k: v[:keep] for k, v in trace.states.items()}, step_losses=trace.step_losses[:keep],
            final_loss=trace.step_losses[keep] if keep < len(trace.step_losses) else trace.final_loss,
            diverged_at=keep + 1, message=_divergence_message(keep + 1, "Q or a gradient"))
    return trace


def _all_finite(rec: StepRecord) -> bool:
    return math.isfinite(rec.loss) and all(bool(torch.isfinite(x).all()) for x in rec[2:])


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
            _, m_new, v_new, W_new = _adamw_core(W_t, grad_W, m, v, t, lr, beta1, beta2, eps, weight_decay)
            q_new = X @ W_new
            # one sync a step keeps only W's last finite value; a non-finite W shows here, as 0·inf is NaN
            loss = float(mse_loss(q_new, T))
            if not math.isfinite(loss):
                diverged_at = t
                break
            W_t, m, v, q = W_new, m_new, v_new, q_new
            losses.append(loss)
    message = None if diverged_at is None else _divergence_message(diverged_at, "the loss")
    d, k = W.shape
    return FullFinetuneTrace(losses, W_t.to("cpu", copy=True), d * k, diverged_at, message)
