"""Fine-tuning the real transformer (lora_core.finetune) against torch's own autograd and torch.optim.AdamW."""
from __future__ import annotations

import copy
import math
from dataclasses import replace
from itertools import islice

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call

from lora_core.experiments import BUDGET_RANK, PLACEMENTS, budget_grid, budget_rank, energy_share, rank_sweep
from lora_core.finetune import (
    BATCH,
    MAX_FT_STEPS,
    TARGET_TYPES,
    FinetuneSettings,
    batches,
    check_settings,
    finetune,
    initial_adapters,
    module_names,
    predict,
    weight_updates,
)
from lora_core.tiny import TinyConfig, load_base_model, model_digest, task_targets
from tolerances import assert_close, assert_each_close, nudge, product_size, rel_tol, ulps_apart

CFG = TinyConfig()


@pytest.fixture(scope="module")
def base64():
    return load_base_model(dtype=torch.float64)


@pytest.fixture(scope="module")
def base32():
    return load_base_model()


@pytest.fixture(scope="module")
def held():
    from lora_core.tiny import held_out_set
    return held_out_set(CFG, 200)


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same_bits(model, snap):
    state = model.state_dict()
    return set(state) == set(snap) and all(
        state[k].dtype == snap[k].dtype and state[k].numpy().tobytes() == snap[k].numpy().tobytes() for k in snap)


# --- the base is never written -------------------------------------------------------------------

@pytest.mark.parametrize("full", [False, True])
def test_base_stays_bit_identical(base32, held, full):
    snap, digest = _snapshot(base32), model_digest(base32)
    s = FinetuneSettings(targets=("q", "k", "v", "o", "ffn"), steps=4, lr=0.05, full=full)
    run = finetune(base32, s, held_out=held)
    assert _same_bits(base32, snap) and model_digest(base32) == digest
    assert not any(p.requires_grad for p in base32.parameters())
    # and the run did change something
    moved = run.full_state if full else {n: B for n, (_, B) in run.adapters.items()}
    ref = snap if full else {n: torch.zeros_like(B) for n, B in moved.items()}
    assert any(not torch.equal(moved[k], ref[k]) for k in moved)


# --- LoRA against an independent torch run --------------------------------------------------------

def _merged_forward(base, pairs, s, x):
    """The model with W + s·A·B in place of W, by torch.func.functional_call (not the model's LoRA path)."""
    params = dict(base.named_parameters())
    for name, (A, B) in pairs.items():
        params[f"{name}.weight"] = params[f"{name}.weight"] + s * (A @ B).T
    return functional_call(base, params, (x,))


def _oracle_lora(base, s: FinetuneSettings, nudged=False):
    """torch autograd and torch.optim.AdamW on the merged weights; ``nudged`` starts every entry of A one ulp higher."""
    init = initial_adapters(base.cfg, s, torch.float64)
    leaves = {n: ((nudge(A) if nudged else A).clone().requires_grad_(True), B.clone().requires_grad_(True))
              for n, (A, B) in init.items()}
    opt = torch.optim.AdamW([t for pair in leaves.values() for t in pair], lr=s.lr, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.01, foreach=False)
    scale = s.alpha / (math.sqrt(s.r) if s.rslora else s.r)
    losses = []
    for x in islice(batches(base.cfg, s), s.steps):
        logits = _merged_forward(base, leaves, scale, x)
        loss = F.cross_entropy(logits.reshape(-1, base.cfg.vocab), task_targets(s.task, x).reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, {n: (A.detach(), B.detach()) for n, (A, B) in leaves.items()}


@pytest.mark.parametrize("s", [
    FinetuneSettings(task="reverse", targets=("q", "v", "ffn"), r=4, alpha=8.0, lr=1e-2, steps=60, seed=0),
    FinetuneSettings(task="permute", targets=("k", "o"), layers=(1,), r=3, alpha=5.0, rslora=True, lr=2e-2,
                     steps=50, seed=7),
], ids=["q+v+ffn", "k+o-layer1-rslora"])
def test_lora_losses_match_torch_autograd_and_adamw(base64, held, s):
    run = finetune(base64, s, held_out=held)
    oracle, final = _oracle_lora(base64, s)
    # the merged W + s·A·B rounds the adapter's part against W, so a few ulps differ at every step and the run
    # carries them on; how far it spreads one ulp is measured, by the oracle again from A one ulp higher
    nudged, nudged_final = _oracle_lora(base64, s, nudged=True)
    loss_growth = ulps_apart(nudged, oracle, torch.float64)
    factor_growth = max(ulps_apart(a, b) for n in final for a, b in zip(nudged_final[n], final[n]))
    assert len(run.losses) == s.steps
    # each loss within ULPS·√steps ulps of its own size, times that growth (tests/tolerances.py says why)
    assert_each_close(run.losses, oracle, torch.float64, depth=s.steps, growth=loss_growth, what="losses")
    assert run.losses[-1] < run.losses[0] - 0.5  # it learned something
    assert set(run.adapters) == set(final) == set(module_names(CFG, s))
    for n, (A, B) in run.adapters.items():
        assert_close(A, final[n][0], depth=s.steps, growth=factor_growth, what=f"{n} A")
        assert_close(B, final[n][1], depth=s.steps, growth=factor_growth, what=f"{n} B")
    # α/r or α/√r: one or two correctly rounded operations, however it is written
    assert run.scaling == pytest.approx(s.alpha / (math.sqrt(s.r) if s.rslora else s.r), rel=rel_tol(torch.float64))
    assert run.trainable == sum(A.numel() + B.numel() for A, B in run.adapters.values())
    assert run.total == sum(p.numel() for p in base64.parameters())


def test_initial_adapters_are_peft_default(base64):
    s = FinetuneSettings(targets=("q", "ffn"), r=5, seed=3)
    init = initial_adapters(CFG, s, torch.float64)
    for name, (A, B) in init.items():
        d_in, d_out = CFG.module_shape(name.rsplit(".", 1)[1])
        assert A.shape == (d_in, 5) and B.shape == (5, d_out)
        assert float(A.abs().max()) <= 1 / math.sqrt(d_in) and float(A.abs().max()) > 0.5 / math.sqrt(d_in)
        assert not B.any()
    assert not torch.equal(init["layers.0.q_proj"][0], initial_adapters(CFG, replace(s, seed=4))["layers.0.q_proj"][0])


def test_batches_are_the_seeds_and_fixed():
    s = FinetuneSettings(seed=5)
    first, again = list(islice(batches(CFG, s), 3)), list(islice(batches(CFG, s), 3))
    assert all(b.shape == (BATCH, CFG.seq_len) for b in first)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], first[1])
    assert not torch.equal(first[0], next(batches(CFG, replace(s, seed=6))))


# --- full fine-tuning against torch.optim.AdamW on a copy ----------------------------------------

def _oracle_full(base, s: FinetuneSettings, nudged=False):
    """torch.optim.AdamW on a copy of every parameter; ``nudged`` starts each of them one ulp higher."""
    model = copy.deepcopy(base).requires_grad_(True)
    if nudged:
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(nudge(p))
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=0.01, foreach=False)
    losses = []
    for x in islice(batches(CFG, s), s.steps):
        loss = F.cross_entropy(model(x).reshape(-1, CFG.vocab), x.flip(-1).reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model


def test_full_finetuning_matches_torch_adamw(base64, held):
    s = FinetuneSettings(task="reverse", lr=3e-3, steps=50, seed=1, full=True)
    run = finetune(base64, s, held_out=held)
    oracle, model = _oracle_full(base64, s)
    state = model.state_dict()
    # the same operations, but finetune trains on one thread and this oracle on torch's default, so matrix products
    # sum in other blocks and an ulp or so differs at every step; how far the run spreads one ulp is measured,
    # by the oracle again from every weight one ulp higher
    nudged, nudged_model = _oracle_full(base64, s, nudged=True)
    loss_growth = ulps_apart(nudged, oracle, torch.float64)
    state_growth = max(ulps_apart(v, state[k]) for k, v in nudged_model.state_dict().items())
    assert_each_close(run.losses, oracle, torch.float64, depth=s.steps, growth=loss_growth, what="losses")
    for k, v in state.items():
        assert_close(run.full_state[k], v, depth=s.steps, growth=state_growth, what=k)
    assert run.trainable == run.total and run.scaling == 1.0 and run.adapters == {}
    # ΔW of full fine-tuning is W_after − W_before in the row convention; the difference is known only as well as
    # the weights it is taken from, so it is measured against their size
    dW = weight_updates(base64, run)
    name = "layers.1.v_proj"
    after = model.weight(name).detach()
    assert_close(dW[name], after - base64.weight(name).detach(), depth=s.steps, growth=state_growth,
                 scale=float(after.abs().max()), what=f"ΔW of {name}")
    with torch.no_grad():
        assert torch.equal(predict(base64, run, held), model(held).argmax(-1))


def test_lora_weight_updates_and_predict(base64, held):
    s = FinetuneSettings(targets=("v",), r=2, steps=20, lr=0.05)
    run = finetune(base64, s, held_out=held)
    dW = weight_updates(base64, run)
    assert set(dW) == set(run.adapters)
    for n, (A, B) in run.adapters.items():
        # a sum of r products, against the size of s·|A|·|B|
        assert_close(dW[n], run.scaling * A @ B, depth=s.r, scale=abs(run.scaling) * product_size(A, B))
        assert torch.linalg.matrix_rank(dW[n]) <= 2
    pairs = run.adapters
    with torch.no_grad():
        assert torch.equal(predict(base64, run, held), _merged_forward(base64, pairs, run.scaling, held).argmax(-1))
        assert torch.equal(predict(base64, None, held), base64(held).argmax(-1))


# --- settings that no run can use -----------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    (dict(r=33), r"r = 33 is above the width .* at most 32"),
    (dict(r=33, targets=("ffn",)), r"r = 33 is above the width"),
    (dict(r=0), r"the rank r must be a whole number of at least 1, got 0"),
    (dict(r=2.5), r"the rank r must be a whole number"),
    (dict(lr=float("nan")), r"learning rate must be a finite number in \(0, 1\], got nan"),
    (dict(lr=float("inf")), r"learning rate .* got inf"),
    (dict(lr=-1e-3), r"learning rate .* got -0\.001"),
    (dict(lr=0.0), r"learning rate .* got 0\.0"),
    (dict(lr=2.0), r"learning rate .* got 2\.0"),
    (dict(targets=()), r"no target is ticked"),
    (dict(targets=("q", "gate")), r"'gate' is not a target"),
    (dict(layers=(0, 2)), r"layer 2 does not exist; the model has layers 0…1"),
    (dict(layers=(-1,)), r"layer -1 does not exist"),
    (dict(steps=0), r"steps must be a whole number in 1…2000, got 0"),
    (dict(steps=MAX_FT_STEPS + 1), r"steps must be a whole number in 1…2000, got 2001"),
    (dict(steps=True), r"steps must be a whole number"),
    (dict(task="sort"), r"task 'sort' is not an adaptation task"),
    (dict(alpha=float("inf")), r"α must be a finite number"),
    (dict(seed=-1), r"the seed must be a whole number"),
])
def test_check_settings_refuses_by_name(base32, change, message):
    s = replace(FinetuneSettings(steps=3), **change)
    with pytest.raises(ValueError, match=message):
        check_settings(CFG, s)
    with pytest.raises(ValueError, match=message):
        finetune(base32, s)


@pytest.mark.parametrize("change", [dict(r=32), dict(r=32, targets=("ffn",)), dict(steps=MAX_FT_STEPS),
                                    dict(lr=1.0), dict(layers=(1,)), dict(full=True, targets=(), r=999)])
def test_check_settings_accepts_the_edges(change):
    check_settings(CFG, replace(FinetuneSettings(), **change))


# --- stop, progress and determinism ---------------------------------------------------------------

def test_stop_from_on_step(base32, held):
    seen = []

    def on_step(step, loss, acc):
        seen.append((step, loss, acc))
        return step == 3

    run = finetune(base32, FinetuneSettings(steps=10), on_step=on_step, eval_every=2, held_out=held)
    assert run.stopped and run.steps_done == 3 and len(run.losses) == 3
    assert [s for s, _, _ in seen] == [1, 2, 3]
    assert [loss for _, loss, _ in seen] == list(run.losses)
    assert seen[0][2] is None and seen[1][2] is not None and seen[2][2] is None
    assert run.eval_steps == (0, 2, 3) and len(run.accuracies) == 3
    # the stopped run is the same as the first 3 steps of a full one
    whole = finetune(base32, FinetuneSettings(steps=5), held_out=held)
    assert whole.losses[:3] == run.losses and not whole.stopped


def test_stop_on_the_last_step_is_not_a_stop(base32, held):
    run = finetune(base32, FinetuneSettings(steps=3), on_step=lambda step, *_: step == 3, held_out=held)
    assert not run.stopped and run.steps_done == 3


def test_same_settings_give_the_same_run(base32, held):
    s = FinetuneSettings(targets=("q", "ffn"), steps=8, lr=0.03)
    a, b = finetune(base32, s, held_out=held), finetune(base32, s, held_out=held)
    assert a.losses == b.losses and a.accuracies == b.accuracies
    assert all(torch.equal(a.adapters[n][i], b.adapters[n][i]) for n in a.adapters for i in (0, 1))
    assert finetune(base32, replace(s, seed=1), held_out=held).losses != a.losses


# --- the paper's experiments ------------------------------------------------------------------------

def test_budget_rank_holds_attention_placements_at_the_budget():
    budget = BUDGET_RANK * 2 * CFG.d_model  # r = 8 on one d×d matrix
    per_layer = lambda targets, r: sum(r * sum(CFG.module_shape(m)) for t in targets for m in TARGET_TYPES[t])
    for p in PLACEMENTS:
        r = budget_rank(CFG, p)
        if "ffn" in p:
            # brute force: the smallest r whose count is closest to the budget
            best = min(range(1, 65), key=lambda q: (abs(per_layer(p, q) - budget), q))
            assert r == best == 3
        else:
            assert per_layer(p, r) == budget, p
            # the trainable count of the real settings is that budget in every layer
            s = FinetuneSettings(targets=p, r=r)
            init = initial_adapters(CFG, s)
            assert sum(A.numel() + B.numel() for A, B in init.values()) == budget * CFG.layers
    grid = budget_grid(CFG, FinetuneSettings(steps=7, lr=0.02))
    assert [g.targets for g in grid[:-1]] == list(PLACEMENTS) and grid[-1].full
    assert all(g.steps == 7 and g.lr == 0.02 for g in grid)
    assert [g.r for g in rank_sweep(FinetuneSettings(targets=("q",)))] == [1, 2, 4, 8, 16]


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 12), cols=st.integers(1, 12), r=st.integers(0, 14), seed=st.integers(0, 10**6))
def test_energy_share_against_numpy_svd(rows, cols, r, seed):
    M = np.random.default_rng(seed).standard_normal((rows, cols))
    sigma = np.linalg.svd(M, compute_uv=False)
    expected = float((sigma[:r] ** 2).sum() / (sigma ** 2).sum())
    # an SVD is backward stable: each σ is within ULPS·√(rows·cols) ulps of σ_max, so each σ² within twice that of
    # the total energy, and a share sums up to min(rows, cols) of them
    tol = 2 * rel_tol(torch.float64, depth=rows * cols * min(rows, cols))
    assert energy_share(torch.from_numpy(M), r) == pytest.approx(expected, rel=0, abs=tol)


def test_energy_share_of_low_rank_and_zero():
    g = torch.Generator().manual_seed(0)
    M = torch.randn(20, 2, generator=g, dtype=torch.float64) @ torch.randn(2, 30, generator=g, dtype=torch.float64)
    # rank 2: the 18 discarded σ are rounding, their σ² ≈ eps²; what is left is the SVD's rounding, as above
    assert energy_share(M, 2) == pytest.approx(1.0, rel=0, abs=2 * rel_tol(torch.float64, depth=20 * 30 * 20))
    assert energy_share(M, 1) < 1.0
    assert energy_share(torch.zeros(4, 4), 2) == 0.0


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_run_on_cuda_matches_the_cpu_run_and_reports_cuda_memory():
    """The app trains on the GPU when there is one: the same settings give the same curve, to rounding."""
    s = FinetuneSettings(steps=60, seed=4242)
    base64 = load_base_model(dtype=torch.float64)
    cpu = finetune(base64, s)
    gpu_base = load_base_model(device="cuda", dtype=torch.float64)
    before = {k: v.clone() for k, v in gpu_base.state_dict().items()}
    gpu = finetune(gpu_base, s)
    assert gpu.device.startswith("cuda") and "cuda" in gpu.memory_how and gpu.peak_bytes > 0
    # the GPU sums in its own order, so a few ulps differ at every step; how far these settings spread one ulp
    # is measured on the CPU, by the torch oracle from A one ulp higher
    growth = ulps_apart(_oracle_lora(base64, s, nudged=True)[0], _oracle_lora(base64, s)[0], torch.float64)
    assert_each_close(gpu.losses, cpu.losses, torch.float64, depth=s.steps, growth=growth, what="losses")
    assert all(torch.equal(before[k], v) for k, v in gpu_base.state_dict().items())
