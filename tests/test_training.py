"""Oracle tests of lora_core.training and lora_core.trace against torch autograd, torch.optim.AdamW and PEFT."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_core.lora import init_peft_default, lora_forward, seed_example
from lora_core.trace import StepRecord, Trace, adamw_trace
from lora_core.training import (
    MAX_STEPS,
    AdamWStage,
    Target,
    adamw_step,
    check_hyperparams,
    full_finetune_trace,
    lora_grads,
    make_target,
    mse_loss,
    rank_r_floor,
)
from tolerances import assert_close, assert_each_close, nudge, rel_tol, ulps_apart

HYPERPARAMS = [
    dict(lr=0.01),  # torch's other defaults
    dict(lr=0.05, weight_decay=0.0),
    dict(lr=0.003, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
]


def _random_example(n, d, k, r, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    mk = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
    return mk(n, d), mk(d, k), mk(d, r) * 0.3, mk(r, k) * 0.3, mk(n, k)


def _torch_lora_run(X, W, A, B, T, steps, scaling=1.0, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                    weight_decay=0.01):
    """The plain way: autograd and torch.optim.AdamW (single-tensor path), PEFT's forward order."""
    A_p, B_p = A.clone().requires_grad_(), B.clone().requires_grad_()
    opt = torch.optim.AdamW([A_p, B_p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                            foreach=False)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(X @ W + ((X @ A_p) @ B_p) * scaling, T)
        loss.backward()
        opt.step()
        sA, sB = opt.state[A_p], opt.state[B_p]
        out.append(dict(loss=loss.item(), A=A_p.detach().clone(), B=B_p.detach().clone(),
                        grad_A=A_p.grad.clone(), grad_B=B_p.grad.clone(),
                        exp_avg_A=sA["exp_avg"].clone(), exp_avg_B=sB["exp_avg"].clone(),
                        exp_avg_sq_A=sA["exp_avg_sq"].clone(), exp_avg_sq_B=sB["exp_avg_sq"].clone()))
    return out


def _assert_trace_matches(trace, ref):
    """Bit for bit: the trace runs the same operations as autograd and torch's single-tensor AdamW, in the same
    order and on the same kernels, so no rounding can differ and no tolerance is owed."""
    assert len(trace) == len(ref)
    for rec, want in zip(trace, ref):
        assert rec.loss == want["loss"], rec.step
        for name in ("A", "B", "grad_A", "grad_B", "exp_avg_A", "exp_avg_B", "exp_avg_sq_A", "exp_avg_sq_B"):
            torch.testing.assert_close(getattr(rec, name), want[name], rtol=0, atol=0,
                                       msg=lambda m, n=name, t=rec.step: f"{n} at step {t}: {m}")


def _sizes(X, W, A, B, T, s):
    """What each result's rounding is proportional to: its formula on the entries' sizes (|fl(AB) − AB| ≤ γ·|A|·|B|),
    so a result that cancels to something small is still measured against what it was summed from."""
    n, k = T.shape
    Q = X.abs() @ W.abs() + abs(s) * (X.abs() @ A.abs()) @ B.abs()
    R = Q + T.abs()
    G = 2 * R / (n * k)
    sizes = {"q": Q, "loss": 3 * (R ** 2).mean(),  # L = mean(R²): 2·|R|·δR from each square, and the sum's own
             "grad_q": G, "grad_A": abs(s) * X.abs().T @ G @ B.abs().T, "grad_B": abs(s) * (X.abs() @ A.abs()).T @ G,
             "grad_X": G @ (W.abs() + abs(s) * A.abs() @ B.abs()).T}
    return {name: float(size.max()) for name, size in sizes.items()}


# --- target and loss ------------------------------------------------------------------------

@pytest.mark.parametrize("r_star", [1, 2, 3])
def test_make_target_is_seeded_and_has_rank_r_star(r_star):
    X, W, _, _ = seed_example()
    tgt = make_target(X, W, r_star=r_star, seed=7)
    assert isinstance(tgt, Target)
    assert torch.equal(tgt.delta_W_star, make_target(X, W, r_star=r_star, seed=7).delta_W_star)
    assert not torch.equal(tgt.delta_W_star, make_target(X, W, r_star=r_star, seed=8).delta_W_star)
    assert torch.linalg.matrix_rank(tgt.delta_W_star) == r_star
    torch.testing.assert_close(tgt.T, X @ (W + tgt.delta_W_star), rtol=0, atol=0)
    assert 0.02 < tgt.delta_W_star.abs().mean() < 0.6  # readable numbers, not huge ones


def test_make_target_follows_dtype_and_rejects_bad_rank():
    X, W, _, _ = seed_example(dtype=torch.float32)
    tgt = make_target(X, W, r_star=2)
    assert tgt.delta_W_star.dtype == tgt.T.dtype == torch.float32
    # the same seed gives the same ΔW* in float32 and float64
    # ΔW* is drawn in float64 and rounded once to float32: each entry within half an ulp of its own size
    torch.testing.assert_close(tgt.delta_W_star.double(), make_target(*seed_example()[:2], r_star=2).delta_W_star,
                               rtol=rel_tol(torch.float32), atol=0)
    for bad in (0, 4, 1.5):
        with pytest.raises(ValueError, match="r\\*"):
            make_target(X, W, r_star=bad)


def test_mse_loss_is_mean_over_all_entries():
    Q, T = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    assert torch.equal(mse_loss(Q, T), F.mse_loss(Q, T))
    # the same 12 squares summed in another order
    assert math.isclose(mse_loss(Q, T).item(), ((Q - T) ** 2).sum().item() / 12, rel_tol=rel_tol(torch.float64, 12))


# --- gradients against autograd -------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 7), d=st.integers(1, 7), k=st.integers(1, 7), r=st.integers(1, 4),
       seed=st.integers(0, 2**31 - 1), scaling=st.sampled_from([1.0, 0.5, 2.0, 16.0 / 3]))
def test_analytic_grads_match_autograd(n, d, k, r, seed, scaling):
    X, W, A, B, T = _random_example(n, d, k, r, seed)
    X_p, A_p, B_p = (t.clone().requires_grad_() for t in (X, A, B))
    W_frozen = W.clone().requires_grad_(False)
    q = X_p @ W_frozen + ((X_p @ A_p) @ B_p) * scaling
    loss = F.mse_loss(q, T)
    loss.backward()
    assert W_frozen.grad is None  # W is frozen: no gradient is ever stored for it

    g = lora_grads(X, W, A, B, T, scaling)
    # the chain rule by hand against autograd: sums of up to d, r, n and k terms in a row, each result against the
    # size of what it was summed from
    size, depth = _sizes(X, W, A, B, T, scaling), d + r + n + k
    assert_close(g.q, q.detach(), depth=depth, scale=size["q"])
    assert_close(g.loss, loss.detach(), depth=depth, scale=size["loss"])
    assert_close(g.grad_A, A_p.grad, depth=depth, scale=size["grad_A"])
    assert_close(g.grad_B, B_p.grad, depth=depth, scale=size["grad_B"])
    assert_close(g.grad_X, X_p.grad, depth=depth, scale=size["grad_X"])
    # the textbook forms of the same gradients
    G = 2 * (g.q - T) / (n * k)
    assert_close(g.grad_q, G, depth=depth, scale=size["grad_q"])
    assert_close(g.grad_X, G @ (W + scaling * A @ B).T, depth=depth, scale=size["grad_X"])
    torch.testing.assert_close(g.q, lora_forward(X, W, A, B, scaling).q, rtol=0, atol=0)


def test_lora_grads_rejects_mismatched_target():
    X, W, A, B = seed_example()
    with pytest.raises(ValueError, match="n×k"):
        lora_grads(X, W, A, B, torch.zeros(3, 4, dtype=X.dtype))


# --- the trace against torch.optim.AdamW ----------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("hp", HYPERPARAMS)
@pytest.mark.parametrize("example", ["seed", "random"])
def test_adamw_trace_matches_torch_optim(dtype, hp, example):
    if example == "seed":
        X, W, A, B = seed_example(dtype=dtype)
        T, scaling = make_target(X, W, r_star=2).T, 1.0
    else:
        X, W, A, B, T = _random_example(6, 7, 5, 3, seed=3, dtype=dtype)
        scaling = 2.0
    trace = adamw_trace(X, W, A, B, T, steps=200, scaling=scaling, **hp)
    assert not trace.diverged
    _assert_trace_matches(trace, _torch_lora_run(X, W, A, B, T, 200, scaling, **hp))


def _peft_run(X, W, A, B, T, r, lora_alpha, steps, **hp):
    from peft import LoraConfig, get_peft_model

    class OneProj(nn.Module):
        def __init__(self, d, k):
            super().__init__()
            self.q_proj = nn.Linear(d, k, bias=False)

        def forward(self, x):
            return self.q_proj(x)

    d, k = W.shape
    model = OneProj(d, k).to(X.dtype)
    with torch.no_grad():
        model.q_proj.weight.copy_(W.T)  # PEFT stores Wᵀ, Aᵀ and Bᵀ
    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=lora_alpha, target_modules=["q_proj"],
                                                  init_lora_weights=False))
    layer = peft_model.base_model.model.q_proj
    lora_A, lora_B = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    with torch.no_grad():
        lora_A.copy_(A.T)
        lora_B.copy_(B.T)
    assert layer.scaling["default"] == lora_alpha / r
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    assert len(trainable) == 2 and sum(p.numel() for p in trainable) == r * (d + k)
    opt = torch.optim.AdamW(trainable, foreach=False, **hp)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(peft_model(X), T)
        loss.backward()
        opt.step()
        out.append(dict(loss=loss.item(), A=lora_A.detach().T.clone(), B=lora_B.detach().T.clone(),
                        exp_avg_A=opt.state[lora_A]["exp_avg"].T.clone(),
                        exp_avg_B=opt.state[lora_B]["exp_avg"].T.clone()))
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("r,lora_alpha", [(2, 2), (2, 16), (3, 4)])
def test_adamw_trace_matches_peft_lora(dtype, r, lora_alpha):
    X, W, A, B, T = _random_example(4, 6, 5, r, seed=11, dtype=dtype)
    hp = dict(lr=0.01, weight_decay=0.01)
    ref = _peft_run(X, W, A, B, T, r, lora_alpha, 50, **hp)
    trace = adamw_trace(X, W, A, B, T, steps=50, scaling=lora_alpha / r, **hp)
    # PEFT's nn.Linear multiplies by the stored transposes, so a few ulps differ from step 1 and the run carries
    # them on; how far it spreads one ulp is measured, by PEFT again from A one ulp higher
    nudged = _peft_run(X, W, nudge(A), B, T, r, lora_alpha, 50, **hp)
    growth = {name: max(ulps_apart(a[name], b[name]) for a, b in zip(nudged, ref))
              for name in ("A", "B", "exp_avg_A", "exp_avg_B")}
    assert len(trace) == 50
    assert_each_close([rec.loss for rec in trace], [want["loss"] for want in ref], dtype, depth=50,
                      growth=ulps_apart([a["loss"] for a in nudged], [b["loss"] for b in ref], dtype), what="losses")
    for rec, want in zip(trace, ref):
        for name in growth:
            assert_close(getattr(rec, name), want[name], depth=50, growth=growth[name], what=f"{name} at {rec.step}")


# --- AdamW's stages -------------------------------------------------------------------------

@pytest.mark.parametrize("t", [1, 2, 58, 200])
def test_a_replayed_step_matches_autograd_at_that_step(t):
    """A trace stores only A, B, m, v per step; what it shows of step t is recomputed. Check it there."""
    X, W, A, B, T = _random_example(6, 7, 5, 3, seed=8, dtype=torch.float64)
    hp = dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    trace = adamw_trace(X, W, A, B, T, steps=200, scaling=0.5, **hp)
    rec = trace[t - 1]
    A_in, B_in = (A, B) if t == 1 else (trace.states["A"][t - 2], trace.states["B"][t - 2])
    X_p, A_p, B_p = (x.clone().requires_grad_(True) for x in (X, A_in, B_in))
    q = X_p @ W + 0.5 * (X_p @ A_p) @ B_p
    q.retain_grad()
    loss = F.mse_loss(q, T)
    loss.backward()
    # the replay's chain rule against autograd, as in test_analytic_grads_match_autograd
    size, depth = _sizes(X, W, A_in, B_in, T, 0.5), sum(X.shape) + sum(B_in.shape)
    assert rec.step == t and rec.loss == pytest.approx(loss.item(), rel=0, abs=rel_tol(X.dtype, depth) * size["loss"])
    for name, want in (("q", q), ("grad_q", q.grad), ("grad_A", A_p.grad), ("grad_B", B_p.grad), ("grad_X", X_p.grad)):
        assert_close(getattr(rec, name), want.detach(), depth=depth, scale=size[name], what=name)
    # the state it hands on is the next step's input, and the last one is the trace's result
    torch.testing.assert_close(rec.A, trace.states["A"][t - 1], rtol=0, atol=0)
    if t == 200:
        torch.testing.assert_close(rec.B, trace.B, rtol=0, atol=0)


def test_stages_are_consistent_and_match_adamw_step():
    X, W, A, B = seed_example()
    hp = dict(lr=0.02, betas=(0.85, 0.99), eps=1e-8, weight_decay=0.05)
    trace = adamw_trace(X, W, A, B, make_target(X, W), steps=20, **hp)
    prev_A, m, v = A, torch.zeros_like(A), torch.zeros_like(A)
    for rec in trace:
        t = rec.step
        stage = adamw_step(prev_A, rec.grad_A, m, v, t, **hp)
        assert isinstance(stage, AdamWStage)
        # the trace's stages are adamw_step's, and the same formulas written the same way: bit for bit
        for got, want in zip(rec.stage_A, stage):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
        torch.testing.assert_close(rec.decayed_A, prev_A * (1 - 0.02 * 0.05), rtol=0, atol=0)
        torch.testing.assert_close(rec.m_hat_A, rec.exp_avg_A / (1 - 0.85 ** t), rtol=0, atol=0)
        torch.testing.assert_close(rec.v_hat_A, rec.exp_avg_sq_A / (1 - 0.99 ** t), rtol=0, atol=0)
        # the textbook update −lr·m̂/(√v̂ + ε) against torch's denom form, entry by entry (no sums): about five
        # roundings apart; the trace's update is new − decayed, so each entry also carries θ's rounding, an ulp of
        # |decayed| + |update|
        size = rec.decayed_A.abs() + rec.update_A.abs()
        textbook = -0.02 * rec.m_hat_A / (rec.v_hat_A.sqrt() + 1e-8)
        assert ((rec.update_A - textbook).abs() <= rel_tol(torch.float64, 5) * size).all(), t
        # new − decayed, added back to decayed: two roundings of the same size
        assert ((rec.A - (rec.decayed_A + rec.update_A)).abs() <= rel_tol(torch.float64, 2) * size).all(), t
        prev_A, m, v = rec.A, rec.exp_avg_A, rec.exp_avg_sq_A


def test_adamw_step_leaves_its_inputs_alone():
    theta, grad = torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    m, v = torch.randn(3, 2, dtype=torch.float64), torch.rand(3, 2, dtype=torch.float64)
    before = [x.clone() for x in (theta, grad, m, v)]
    adamw_step(theta, grad, m, v, 3, lr=0.1)
    assert all(torch.equal(a, b) for a, b in zip(before, (theta, grad, m, v)))


# --- what B = 0 means -----------------------------------------------------------------------

def test_b_zero_starts_at_the_base_model_and_only_b_moves_first():
    X, W, _, _ = seed_example()
    A, B = init_peft_default(5, 3, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(lora_forward(X, W, A, B).q, X @ W)
    tgt = make_target(X, W)
    g = lora_grads(X, W, A, B, tgt.T)
    assert torch.equal(g.grad_A, torch.zeros_like(A))  # s·Xᵀ·G·Bᵀ with B = 0
    assert g.grad_B.abs().max() > 1e-4
    trace = adamw_trace(X, W, A, B, tgt, steps=2, lr=0.01, weight_decay=0.0)
    assert torch.equal(trace[0].grad_A, torch.zeros_like(A))
    assert torch.equal(trace[0].A, A)  # m = 0 so the update is exactly zero
    assert not torch.equal(trace[0].B, B)
    assert trace[1].grad_A.abs().max() > 0  # once B ≠ 0, A starts to learn too
    assert not torch.equal(trace[1].A, A)


# --- what rank can and cannot reach ---------------------------------------------------------

def _residual_tol(X, W, T):
    """How well an entry of the residual T − X·(W + M) is known when M comes through X's pseudo-inverse (a least
    squares solve or an SVD): a few ulps of the entries' size |T| + |X|·|W|, magnified by cond(X)."""
    size = float((T.abs() + X.abs() @ W.abs()).max())
    return rel_tol(torch.float64, X.numel() * T.shape[1]) * float(torch.linalg.cond(X)) * size


def _floor_slack(X, W, T, floor):
    """How far two routes to a loss near the floor may differ: the floor is mean(r²) over residual entries r, each
    known to within e, so it moves by at most 2·√floor·e + e²."""
    e = _residual_tol(X, W, T)
    return 2 * math.sqrt(floor) * e + e * e


@pytest.mark.parametrize("r_star", [1, 2])
def test_rank_at_least_r_star_fits_the_target(r_star):
    X, W, A, B = seed_example()  # r = 2
    tgt = make_target(X, W, r_star=r_star)
    trace = adamw_trace(X, W, A, B, tgt, steps=500, lr=0.05, weight_decay=0.0)
    assert trace.initial_loss > 1e-3
    assert trace.final_loss < 1e-12
    # the floor is exactly 0 here; what is computed is the mean square of residual entries that are rounding
    assert rank_r_floor(X, tgt.T, W, 2) <= _floor_slack(X, W, tgt.T, 0.0)


def test_rank_below_r_star_stays_above_the_floor():
    X, W, A, B = seed_example()
    A, B = A[:, :1], B[:1]  # r = 1
    tgt = make_target(X, W, r_star=3, seed=1)
    floor = rank_r_floor(X, tgt.T, W, 1)
    # the floor, independently: the best rank-1 approximation of X·ΔW*, reached as X·M
    C = X @ tgt.delta_W_star
    U, S, Vh = torch.linalg.svd(C)
    M = torch.linalg.pinv(X) @ (S[0] * torch.outer(U[:, 0], Vh[0]))
    assert torch.linalg.matrix_rank(M) == 1
    slack = _floor_slack(X, W, tgt.T, floor)
    assert F.mse_loss(X @ (W + M), tgt.T).item() == pytest.approx(floor, rel=0, abs=slack)
    assert floor > 1e-3
    trace = adamw_trace(X, W, A, B, tgt, steps=1000, lr=0.05, weight_decay=0.0)
    assert min(trace.losses) >= floor - slack
    assert trace.final_loss < 1.05 * floor  # and training does get there


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), r=st.integers(1, 2))
def test_no_rank_r_update_beats_the_floor(seed, r):
    X, W, _, _ = seed_example()
    tgt = make_target(X, W, r_star=3, seed=5)
    g = torch.Generator().manual_seed(seed)
    M = torch.randn(5, r, generator=g, dtype=torch.float64) @ torch.randn(r, 3, generator=g, dtype=torch.float64)
    M = M * 0.3
    floor = rank_r_floor(X, tgt.T, W, r)
    assert F.mse_loss(X @ (W + M), tgt.T).item() >= floor - _floor_slack(X, W, tgt.T, floor)


# --- divergence and validation --------------------------------------------------------------

def _all_finite(rec: StepRecord) -> bool:
    return math.isfinite(rec.loss) and all(torch.isfinite(x).all() for x in rec[2:])


@pytest.mark.parametrize("dtype,lr,min_kept", [
    (torch.float64, 1e30, 1), (torch.float32, 1e15, 0), (torch.float64, 1e100, 0),
    # lr·λ = 3 > 2: the decay factor 1 − lr·λ = −2 doubles |θ| every step, so it overflows slowly
    (torch.float64, 300.0, 100), (torch.float32, 300.0, 10),
])
def test_huge_learning_rate_diverges_without_raising(dtype, lr, min_kept):
    X, W, A, B = seed_example(dtype=dtype)
    trace = adamw_trace(X, W, A, B, make_target(X, W), steps=500, lr=lr, weight_decay=0.01)
    assert trace.diverged and trace.diverged_at == len(trace) + 1
    assert min_kept <= len(trace) < 500
    assert str(trace.diverged_at) in trace.message
    assert all(_all_finite(rec) for rec in trace)
    assert math.isfinite(trace.final_loss) and math.isfinite(trace.initial_loss)
    assert torch.isfinite(trace.A).all() and torch.isfinite(trace.B).all()
    assert len(trace.losses) == len(trace) + 1


def test_non_finite_input_gives_an_empty_trace():
    X, W, A, B = seed_example()
    X = X.clone()
    X[0, 0] = math.inf
    trace = adamw_trace(X, W, A, B, make_target(*seed_example()[:2]).T, steps=10, lr=0.01)
    assert trace.diverged_at == 1 and len(trace) == 0
    assert torch.equal(trace.A, A)


def test_a_healthy_trace_is_not_diverged():
    X, W, A, B = seed_example()
    trace = adamw_trace(X, W, A, B, make_target(X, W), steps=50, lr=0.01)
    assert not trace.diverged and trace.diverged_at is None and trace.message is None


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr=0.0), "learning rate"),
    (dict(lr=-1e-3), "learning rate"),
    (dict(lr=math.nan), "learning rate"),
    (dict(lr=math.inf), "learning rate"),
    (dict(betas=(1.0, 0.999)), "β1"),
    (dict(betas=(0.9, -0.1)), "β2"),
    (dict(betas=(0.9, 0.999, 0.5)), "two numbers"),
    (dict(eps=0.0), "eps"),
    (dict(eps=-1e-8), "eps"),
    (dict(weight_decay=-0.01), "weight decay"),
    (dict(steps=0), "steps"),
    (dict(steps=MAX_STEPS + 1), "steps"),
    (dict(steps=2.5), "steps"),
])
def test_check_hyperparams_rejects(kwargs, match):
    args = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, steps=10) | kwargs
    with pytest.raises(ValueError, match=match):
        check_hyperparams(**args)
    X, W, A, B = seed_example()
    with pytest.raises(ValueError, match=match):
        adamw_trace(X, W, A, B, make_target(X, W), **args)


def test_check_hyperparams_accepts_edges():
    check_hyperparams(1e-3, (0.0, 0.0), 1e-12, 0.0, 1)
    check_hyperparams(1e-3, (0.9, 0.999), 1e-8, 0.01, MAX_STEPS)


# --- the trace as a sequence ----------------------------------------------------------------

def test_trace_is_a_sequence_of_cpu_records():
    X, W, A, B = seed_example()
    trace = adamw_trace(X, W, A, B, make_target(X, W), steps=30, lr=0.01, scaling=0.5)
    assert isinstance(trace, Trace) and len(trace) == 30
    assert [rec.step for rec in trace] == list(range(1, 31))
    assert all(torch.equal(a, b) for a, b in zip(trace[-1][2:], trace[29][2:])) and len(trace[:5]) == 5
    assert trace.param_count == 2 * (5 + 3)
    assert trace.initial_loss == trace[0].loss and trace.losses[-1] == trace.final_loss
    torch.testing.assert_close(trace.A, trace[-1].A, rtol=0, atol=0)
    torch.testing.assert_close(trace.A0, A, rtol=0, atol=0)
    # final_loss is the loss at the final A, B
    T = make_target(X, W).T
    size = _sizes(X, W, trace.A, trace.B, T, 0.5)["loss"]
    assert trace.final_loss == pytest.approx(F.mse_loss(lora_forward(X, W, trace.A, trace.B, 0.5).q, T).item(),
                                             rel=0, abs=rel_tol(X.dtype, sum(X.shape) + sum(trace.B.shape)) * size)
    rec = trace[3]
    assert rec.q.shape == rec.grad_q.shape == (3, 3) and rec.grad_X.shape == (3, 5)
    assert rec.A.shape == rec.update_A.shape == (5, 2) and rec.B.shape == rec.m_hat_B.shape == (2, 3)
    assert all(x.device.type == "cpu" and not x.requires_grad for x in rec[2:])
    assert not rec.A.is_inference()


def test_trace_does_not_touch_its_inputs():
    X, W, A, B = seed_example()
    before = [x.clone() for x in (X, W, A, B)]
    adamw_trace(X, W, A, B, make_target(X, W), steps=10, lr=0.1)
    assert all(torch.equal(a, b) for a, b in zip(before, (X, W, A, B)))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trace_on_cuda_matches_cpu():
    X, W, A, B = seed_example()
    tgt = make_target(X, W)
    cpu = adamw_trace(X, W, A, B, tgt, steps=100, lr=0.01)
    gpu = adamw_trace(*(t.cuda() for t in (X, W, A, B)), tgt.T.cuda(), steps=100, lr=0.01)
    assert gpu[-1].A.device.type == "cpu"
    # the GPU sums in its own order, so a few ulps differ at every step; how far the run spreads one ulp is
    # measured on the CPU, from A one ulp higher
    nudged = adamw_trace(X, W, nudge(A), B, tgt, steps=100, lr=0.01)
    assert_close(gpu[-1].A, cpu[-1].A, depth=100, growth=ulps_apart(nudged[-1].A, cpu[-1].A))


def test_trace_is_fast_at_the_seed_size():
    X, W, A, B = seed_example()
    tgt = make_target(X, W)
    timings = []
    for _ in range(3):
        t0 = time.perf_counter()
        adamw_trace(X, W, A, B, tgt, steps=500, lr=0.05)
        timings.append(time.perf_counter() - t0)
    assert min(timings) < 1.0, timings


# --- full fine-tuning -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("hp", HYPERPARAMS)
def test_full_finetune_matches_torch_optim(dtype, hp):
    X, W, _, _ = seed_example(dtype=dtype)
    T = make_target(X, W, r_star=2).T
    ff = full_finetune_trace(X, W, T, steps=100, **hp)
    W_p = W.clone().requires_grad_()
    opt = torch.optim.AdamW([W_p], foreach=False, **hp)
    losses = []
    for _ in range(100):
        opt.zero_grad()
        loss = F.mse_loss(X @ W_p, T)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    losses.append(F.mse_loss(X @ W_p, T).item())
    assert ff.param_count == 15 and not ff.diverged and len(ff.losses) == 101
    # op for op torch's: bit for bit, as in _assert_trace_matches
    assert ff.losses == losses
    torch.testing.assert_close(ff.W, W_p.detach(), rtol=0, atol=0)


def test_full_finetune_diverges_without_raising():
    X, W, _, _ = seed_example()
    ff = full_finetune_trace(X, W, make_target(X, W), steps=100, lr=1e30)
    assert ff.diverged and len(ff.losses) < 101 and str(ff.diverged_at) in ff.message
    assert all(math.isfinite(x) for x in ff.losses) and torch.isfinite(ff.W).all()
    assert not ff.W.is_inference()


def test_floor_for_an_edited_target_outside_the_reach_of_x():
    """n > d: T can leave X's column space; the floor counts that part, and training reaches it."""
    g = torch.Generator().manual_seed(3)
    X = torch.randn(6, 2, generator=g, dtype=torch.float64)
    W = torch.randn(2, 3, generator=g, dtype=torch.float64)
    T = torch.randn(6, 3, generator=g, dtype=torch.float64)  # an arbitrary, "edited" target
    A = torch.randn(2, 1, generator=g, dtype=torch.float64) * 0.1
    B = torch.randn(1, 3, generator=g, dtype=torch.float64) * 0.1
    floor = rank_r_floor(X, T, W, 1)
    # independent check: the best rank-1 M by least squares then truncation, in numpy
    Xn, Rn = X.numpy(), (T - X @ W).numpy()
    M_ls = np.linalg.lstsq(Xn, Rn, rcond=None)[0]
    U, S, Vt = np.linalg.svd(Xn @ M_ls)
    best = np.linalg.pinv(Xn) @ (S[0] * np.outer(U[:, 0], Vt[0]))
    slack = _floor_slack(X, W, T, floor)
    assert ((Xn @ best - Rn) ** 2).mean() == pytest.approx(floor, rel=0, abs=slack)
    trace = adamw_trace(X, W, A, B, T, steps=1500, lr=0.05, weight_decay=0.0)
    assert min(trace.losses) >= floor - slack
    assert trace.final_loss < 1.01 * floor


# --- checkpoints: a run that keeps its state only every K steps -----------------------------

def _records_equal(a: StepRecord, b: StepRecord) -> list[str]:
    """The fields in which two step records differ at all (not one bit may)."""
    return [f for f in StepRecord._fields
            if not (torch.equal(getattr(a, f), getattr(b, f)) if torch.is_tensor(getattr(a, f))
                    else getattr(a, f) == getattr(b, f))]


@pytest.mark.parametrize("every", [2, 3, 7, 40, 41, 1000])
def test_a_checkpointed_trace_is_the_full_trace_bit_for_bit(every):
    """Every step, read from checkpoints and walked forward by the loop's own step, is the stored trace's."""
    X, W, A, B, T = _random_example(6, 7, 5, 3, seed=3)
    hp = dict(steps=40, lr=0.02, betas=(0.85, 0.99), eps=1e-8, weight_decay=0.05, scaling=2.0)
    full, ckpt = adamw_trace(X, W, A, B, T, **hp), adamw_trace(X, W, A, B, T, checkpoint_every=every, **hp)
    assert ckpt.every == every and len(ckpt.states["A"]) == 40 // every  # only the checkpoints are stored
    assert ckpt.step_losses == full.step_losses and ckpt.final_loss == full.final_loss
    assert torch.equal(ckpt.A, full.A) and torch.equal(ckpt.B, full.B)
    for i in range(40):
        assert not _records_equal(ckpt[i], full[i]), (i, _records_equal(ckpt[i], full[i]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("hp", HYPERPARAMS)
def test_a_checkpointed_trace_matches_torch_optim(dtype, hp):
    X, W, A, B, T = _random_example(6, 7, 5, 3, seed=3, dtype=dtype)
    trace = adamw_trace(X, W, A, B, T, steps=60, scaling=2.0, checkpoint_every=25, **hp)
    assert not trace.diverged and len(trace.states["A"]) == 2
    _assert_trace_matches(trace, _torch_lora_run(X, W, A, B, T, 60, 2.0, **hp))


@pytest.mark.parametrize("lr", [1e30, 300.0])
def test_a_checkpointed_trace_diverges_where_the_full_one_does(lr):
    X, W, A, B = seed_example()
    T = make_target(X, W)
    full, ckpt = (adamw_trace(X, W, A, B, T, steps=400, lr=lr, checkpoint_every=e) for e in (1, 9))
    assert full.diverged and (ckpt.diverged_at, ckpt.message) == (full.diverged_at, full.message)
    assert ckpt.step_losses == full.step_losses and ckpt.final_loss == full.final_loss
    assert torch.equal(ckpt.A, full.A) and torch.equal(ckpt.B, full.B)
    assert not _records_equal(ckpt[len(ckpt) - 1], full[len(full) - 1])


def test_checkpoint_every_must_be_a_whole_number_from_1():
    X, W, A, B = seed_example()
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="checkpoint_every"):
            adamw_trace(X, W, A, B, make_target(X, W), steps=5, lr=0.01, checkpoint_every=bad)


def test_replay_state_walks_the_loop_and_refuses_to_walk_back():
    from lora_core.trace import replay_state, state_before
    X, W, A, B, T = _random_example(4, 5, 3, 2, seed=1)
    trace = adamw_trace(X, W, A, B, T, steps=12, lr=0.01)
    hyper = trace.hyper
    state = replay_state(X, W, T, state_before(trace.states, A, B, 3), 2, 12, **hyper)
    for f in state:
        assert torch.equal(state[f], trace.states[f][-1]), f
    with pytest.raises(ValueError, match="walk"):
        replay_state(X, W, T, state, 5, 4, **hyper)
