"""A LoRA training run that can be read back step by step: the trace, and the replay of one step.

The loop keeps only what AdamW carries from step to step (A, B, m, v) and the loss; any step is
recomputed in full from that state by the loop's own operations (:func:`replay_step`). At large
sizes it keeps that state only every ``checkpoint_every`` steps (a checkpoint), and a step between
two checkpoints is reached by walking forward from the one before it with the loop's own step
(:func:`replay_state`), so the numbers are the same, bit for bit on the same device.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .checks import is_whole
from .lora import param_counts
from .training import (
    FINITE_CHECK_EVERY,
    AdamWStage,
    Target,
    adamw_update,
    check_hyperparams,
    divergence_message,
    grads_from_base,
    lora_grads,
    mse_loss,
    train_grads,
)

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
    if step == 1:
        A, B = _copy(A0), _copy(B0)
        return {"A": A, "B": B, "exp_avg_A": torch.zeros_like(A), "exp_avg_sq_A": torch.zeros_like(A),
                "exp_avg_B": torch.zeros_like(B), "exp_avg_sq_B": torch.zeros_like(B)}
    return {f: _copy(states[f][step - 2]) for f in STATE_FIELDS}


def _copy(x) -> torch.Tensor:
    return x.detach().clone() if torch.is_tensor(x) else torch.tensor(x)


def checkpoint_before(states, A0, B0, step: int, every: int = 1) -> tuple[int, dict[str, torch.Tensor]]:
    """The latest stored state at or before the one going into step ``step``: (c, the state after step c).

    ``states`` holds checkpoints, the states after steps ``every``, 2·``every``, … (one row each);
    c = 0 is the start, with m = v = 0. With ``every`` = 1 it is :func:`state_before`, c = ``step`` − 1.
    """
    c = (step - 1) // every * every
    if c == 0:
        return 0, state_before(states, A0, B0, 1)
    return c, {f: _copy(states[f][c // every - 1]) for f in STATE_FIELDS}


def _train_step(X, base, T, state, t, scaling, hp):
    """One step of the training loop: the loss going in, and the state (STATE_FIELDS order) coming out."""
    A, B, mA, vA, mB, vB = state
    g = train_grads(X, base, A, B, T, scaling)
    _, mA, vA, A = adamw_update(A, g[3], mA, vA, t, *hp)
    _, mB, vB, B = adamw_update(B, g[4], mB, vB, t, *hp)
    return g[1], (A, B, mA, vA, mB, vB)


def replay_state(X: torch.Tensor, W: torch.Tensor, T: torch.Tensor, state: dict[str, torch.Tensor], start: int,
                 stop: int, *, scaling: float, lr: float, betas: tuple[float, float], eps: float,
                 weight_decay: float) -> dict[str, torch.Tensor]:
    """The state after step ``stop``, from the state after step ``start`` (0 = the start), by the loop's own steps.

    :func:`adamw_trace` runs the same ``_train_step`` on the same inputs, so on the same device the
    result is the loop's, bit for bit. ``state`` maps :data:`STATE_FIELDS` to tensors on X's device.
    """
    if not 0 <= start <= stop:
        raise ValueError(f"cannot walk from step {start} to step {stop}")
    hp = (lr, betas[0], betas[1], eps, weight_decay)
    s = tuple(state[f] for f in STATE_FIELDS)
    with torch.inference_mode():
        base = X @ W
        for t in range(start + 1, stop + 1):
            _, s = _train_step(X, base, T, s, t, scaling, hp)
    return {f: v.clone() for f, v in zip(STATE_FIELDS, s)}  # clone: ordinary tensors, not inference ones


def replay_step(X: torch.Tensor, W: torch.Tensor, T: torch.Tensor, before: dict[str, torch.Tensor], step: int, *,
                scaling: float, lr: float, betas: tuple[float, float], eps: float, weight_decay: float) -> StepRecord:
    """Step ``step`` (1-based) of a run in full, from the state going into it (A, B and their m, v).

    The same operations as :func:`adamw_trace`'s loop, in the same order, so on the same device the
    numbers are the loop's own, bit for bit. ``before`` maps :data:`STATE_FIELDS` to tensors.
    """
    beta1, beta2 = betas
    hp = (lr, beta1, beta2, eps, weight_decay)
    with torch.inference_mode():
        g = grads_from_base(X, W, X @ W, before["A"], before["B"], T, scaling)
        dA, mA, vA, A = adamw_update(before["A"], g.grad_A, before["exp_avg_A"], before["exp_avg_sq_A"], step, *hp)
        dB, mB, vB, B = adamw_update(before["B"], g.grad_B, before["exp_avg_B"], before["exp_avg_sq_B"], step, *hp)
    c1, c2 = 1 - beta1 ** step, 1 - beta2 ** step
    fields = [g.q, g.grad_q, g.grad_A, g.grad_B, g.grad_X,
              dA, mA, vA, mA / c1, vA / c2, A - dA, A, dB, mB, vB, mB / c1, vB / c2, B - dB, B]
    return StepRecord(step, float(g.loss), *(f.clone() for f in fields))  # clone: ordinary tensors, not inference ones


@dataclass(frozen=True, eq=False)
class Trace(Sequence):
    """One LoRA training run: a sequence of :class:`StepRecord` (CPU tensors), plus how it ended.

    It stores what AdamW carries from step to step (A, B and their moments m and v), one row per
    step or, with ``every`` > 1, one row every ``every`` steps (the state after steps every,
    2·every, …), and every step's loss. Everything else of a step (Q, the gradients, each AdamW stage) is
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
    every: int = 1                   # a row of ``states`` every this many steps (checkpoints)
    end: dict | None = None          # {"A", "B"} after the last kept step (CPU); None: the last row of states
    last_in: dict | None = None      # the state going into the last step (run's device), so reading it walks nothing

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
        rec = replay_step(self.inputs["X"], self.inputs["W"], self.inputs["T"], self.state_before(i + 1), i + 1,
                          **self.hyper)
        cpu = rec._replace(**{f: getattr(rec, f).to("cpu") for f in StepRecord._fields[2:]}, loss=self.step_losses[i])
        if self.every != 1:
            return cpu
        # the state it hands on is the loop's own (identical when replayed on the same device)
        return cpu._replace(**{f: self.states[f][i] for f in STATE_FIELDS})

    def state_before(self, step: int) -> dict[str, torch.Tensor]:
        """What goes into step ``step`` (1-based), on the run's device: stored, or walked to from a checkpoint."""
        device = self.inputs["X"].device
        if self.last_in is not None and step == len(self):
            return dict(self.last_in)
        c, state = checkpoint_before(self.states, self.A0, self.B0, step, self.every)
        state = {f: v.to(device) for f, v in state.items()}
        if c == step - 1:
            return state
        return replay_state(self.inputs["X"], self.inputs["W"], self.inputs["T"], state, c, step - 1, **self.hyper)

    def __iter__(self) -> Iterator[StepRecord]:
        return (self[i] for i in range(len(self)))

    @property
    def losses(self) -> list[float]:
        """L before each step, then L at the end: the loss curve, one point longer than the trace."""
        return [*self.step_losses, self.final_loss]

    @property
    def A(self) -> torch.Tensor:
        if self.end is not None:
            return self.end["A"]
        return self.states["A"][-1] if len(self) else self.A0

    @property
    def B(self) -> torch.Tensor:
        if self.end is not None:
            return self.end["B"]
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


def adamw_trace(X: torch.Tensor, W: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                target: Target | torch.Tensor, *, steps: int, lr: float,
                betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                weight_decay: float = 0.01, scaling: float = 1.0, checkpoint_every: int = 1) -> Trace:
    """Train A and B (W frozen) with AdamW for ``steps`` steps; every step can be read back in full.

    Runs on the inputs' device. The loop keeps only what the next step needs (A, B, m, v), every
    step or every ``checkpoint_every`` steps, and every step's loss; reading ``trace[t]`` replays
    step t + 1 from that state (see :class:`Trace`). Never raises on divergence: the trace stops
    at the last finite step and says where it went wrong.
    """
    check_hyperparams(lr, betas, eps, weight_decay, steps)
    every = checkpoint_every
    if not is_whole(every, 1, exact=True):
        raise ValueError(f"checkpoint_every must be a whole number ≥ 1, got {every!r}")
    T = target.T if isinstance(target, Target) else target
    lora_grads(X, W, A, B, T, scaling)  # validates every shape once, up front
    beta1, beta2 = betas
    hp = (lr, beta1, beta2, eps, weight_decay)
    rows, losses, extremes = [], [], []
    with torch.inference_mode():  # no autograd bookkeeping: every gradient here is written out
        base = X @ W
        state = (A.detach(), B.detach(), *(torch.zeros_like(p) for p in (A, A, B, B)))  # STATE_FIELDS order
        for t in range(1, steps + 1):
            last_in = state  # no copy: every op is out of place
            loss, state = _train_step(X, base, T, state, t, scaling, hp)
            losses.append(loss)
            if every == 1:
                rows.append(state)
            else:
                if t % every == 0:
                    rows.append(state)
                # what the divergence check needs of a step that is not kept: max and min carry NaN and ±inf
                extremes.append(torch.stack([x.amax() for x in state] + [x.amin() for x in state]))
            # a non-finite loss stays non-finite (NaN spreads through every product), so stop early
            if t % FINITE_CHECK_EVERY == 0 and not torch.isfinite(loss):
                break
        final_loss = mse_loss(base + scaling * ((X @ state[0]) @ state[1]), T)
    # stacking outside inference mode gives ordinary tensors, and one copy to the CPU per field
    shapes = dict(zip(STATE_FIELDS, (A.shape, B.shape, A.shape, A.shape, B.shape, B.shape)))
    columns = list(zip(*rows)) or [()] * len(STATE_FIELDS)
    del rows
    states = {name: torch.stack(columns.pop(0)) if columns[0] else A.new_empty((0, *shapes[name]))
              for name in STATE_FIELDS}  # pop frees each column once stacked
    loss_before = torch.stack(losses)
    n_run = loss_before.shape[0]
    # step t is kept when the loss going into it, its new state and the loss at that state are finite
    loss_after = torch.cat([loss_before[1:], final_loss.reshape(1)])
    checked = states if every == 1 else {
        f: torch.stack(extremes)[:, [i, i + len(STATE_FIELDS)]] for i, f in enumerate(STATE_FIELDS)}
    bad = _first_bad({"loss": loss_before.reshape(-1, 1), "loss after the update": loss_after.reshape(-1, 1), **checked})
    keep = n_run if bad is None else bad[0]
    hyper = dict(scaling=scaling, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
    trace = Trace({k: v[:keep // every].cpu() for k, v in states.items()}, tuple(loss_before[:keep].tolist()),
                  float(loss_before[0]), float(loss_after[keep - 1]) if keep else float(loss_before[0]),
                  None if bad is None else keep + 1,
                  None if bad is None else divergence_message(keep + 1, ", ".join(bad[1])),
                  param_counts(*W.shape, A.shape[1]).lora,
                  A.detach().to("cpu", copy=True), B.detach().to("cpu", copy=True),
                  {"X": X.detach(), "W": W.detach(), "T": T.detach()}, hyper, every)
    if every != 1:
        end = (state[0], state[1]) if keep == n_run else _state_after(trace, keep)
        trace = dataclasses.replace(trace, end={"A": end[0].to("cpu", copy=True), "B": end[1].to("cpu", copy=True)},
                                    last_in={f: v.clone() for f, v in zip(STATE_FIELDS, last_in)} if keep == n_run else None)
    # what a replay adds (Q, ∂L/∂X) overflows only after the state does, but a step is shown in full or not at all
    while len(trace) and not _all_finite(trace[len(trace) - 1]):
        keep = len(trace) - 1
        trace = dataclasses.replace(
            trace, states={k: v[:keep // every] for k, v in trace.states.items()}, step_losses=trace.step_losses[:keep],
            final_loss=trace.step_losses[keep] if keep < len(trace.step_losses) else trace.final_loss,
            diverged_at=keep + 1, message=divergence_message(keep + 1, "Q or a gradient"), last_in=None)
        if every != 1:
            A_end, B_end = _state_after(trace, keep)
            trace = dataclasses.replace(trace, end={"A": A_end.to("cpu", copy=True), "B": B_end.to("cpu", copy=True)})
    return trace


def _state_after(trace: Trace, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A and B after step ``step`` (0: the start), walked to from the trace's checkpoints."""
    state = trace.state_before(step + 1)
    return state["A"], state["B"]


def _all_finite(rec: StepRecord) -> bool:
    return math.isfinite(rec.loss) and all(bool(torch.isfinite(x).all()) for x in rec[2:])
