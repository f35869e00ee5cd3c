"""The core against the seed's hand-computed numbers, numpy, hypothesis properties, and PEFT's LoRA layer."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_core import (
    build_example,
    delta_weight,
    init_gaussian,
    init_peft_default,
    init_random,
    lora_forward,
    lora_scaling,
    merge,
    param_counts,
    pick_device,
    seed_example,
    unmerge,
)
from tolerances import assert_close, product_size, rel_tol

Q_BASE = [[0.13, 0.14, 0.28], [0.17, 0.35, 0.32], [0.29, 0.22, 0.36]]
Q_LORA = [[0.161, 0.190, 0.306], [0.232, 0.449, 0.369], [0.333, 0.291, 0.401]]


def test_seed_example_holds_the_blog_numbers():
    ex = seed_example()
    assert ex.X.shape == (3, 5) and ex.W.shape == (5, 3) and ex.A.shape == (5, 2) and ex.B.shape == (2, 3)
    assert ex.X[1].tolist() == [0.6, 0.7, 0.2, 0.1, 0.3]
    assert ex.W[:, 2].tolist() == [0.0, 0.2, 0.4, 0.1, 0.3]
    assert ex.A[3].tolist() == [0.0, 0.2]
    assert ex.B.tolist() == [[0.2, 0.3, 0.1], [0.1, 0.2, 0.2]]


def test_seed_q_without_and_with_lora_match_the_hand_computation():
    X, W, A, B = seed_example()
    out = lora_forward(X, W, A, B, scaling=1.0)
    # exact decimals against sums of d = 5 (and r = 2) rounded products, each against the size it was summed from
    assert_close(out.base, torch.tensor(Q_BASE, dtype=torch.float64), depth=5, scale=product_size(X, W))
    assert_close(out.q, torch.tensor(Q_LORA, dtype=torch.float64), depth=5 + 2,
                 scale=product_size(X, W) + product_size(X, A, B))
    # Q − base takes back the one rounding of the sum Q, an ulp of |Q|
    assert_close(out.delta, out.q - out.base, depth=2, scale=float(out.q.abs().max()))


def test_seed_forward_matches_numpy():
    ex = seed_example()
    X, W, A, B = (t.numpy() for t in ex)
    out = lora_forward(*ex, scaling=0.5)
    # X·W + s·(X·A)·B against numpy's X·(W + s·A·B): other sums of d and r terms, measured against what they sum
    size = product_size(ex.X, ex.W) + 0.5 * product_size(ex.X, ex.A, ex.B)
    np.testing.assert_allclose(out.q.numpy(), X @ (W + 0.5 * A @ B), rtol=0, atol=rel_tol(torch.float64, 5 + 2) * size)


def test_seed_preset_of_build_example_is_the_seed():
    ex, seed = build_example("seed", 123, 3, 5, 3, 2), seed_example()
    for got, want in zip(ex, seed):
        assert torch.equal(got, want)


@pytest.mark.parametrize("alpha,r,rslora,want", [(2, 2, False, 1.0), (16, 8, False, 2.0), (16, 4, True, 8.0),
                                                 (8, 1, True, 8.0), (1, 4, False, 0.25)])
def test_scaling(alpha, r, rslora, want):
    assert lora_scaling(alpha, r, rslora) == pytest.approx(want, rel=rel_tol(torch.float64))  # one or two roundings


@pytest.mark.parametrize("r", [0, -1, 1.5, True])
def test_scaling_refuses_impossible_rank(r):
    with pytest.raises(ValueError, match="rank r"):
        lora_scaling(2.0, r)


def test_param_counts_and_the_seed_slip():
    c = param_counts(5, 3, 2)
    assert (c.full, c.lora) == (15, 16) and not c.lora_is_smaller
    assert c.break_even == pytest.approx(15 / 8, rel=rel_tol(torch.float64))
    assert param_counts(5, 3, 1).lora_is_smaller
    big = param_counts(4096, 4096, 8)
    assert big.lora == 65_536 and big.full == 16_777_216


dims = st.integers(1, 12)


@st.composite
def lora_problem(draw):
    n, d, k = draw(dims), draw(dims), draw(dims)
    r = draw(st.integers(1, min(d, k)))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    mk = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    return mk(n, d), mk(d, k), mk(d, r), mk(r, k), draw(st.floats(0.1, 8.0))


@settings(max_examples=60, deadline=None)
@given(lora_problem())
def test_shapes_and_rank_of_delta(problem):
    X, W, A, B, s = problem
    n, d, k, r = X.shape[0], W.shape[0], W.shape[1], A.shape[1]
    out = lora_forward(X, W, A, B, scaling=s)
    assert out.base.shape == out.delta.shape == out.q.shape == (n, k)
    dW = delta_weight(A, B, s)
    assert dW.shape == (d, k)
    assert torch.linalg.matrix_rank(dW).item() <= r
    # X·W + s·(X·A)·B against X·(W + s·A·B): sums of d and r terms, against the size of what they sum
    assert_close(out.q, X @ merge(W, A, B, s), depth=d + r + 2, scale=product_size(X, W) + s * product_size(X, A, B))


@settings(max_examples=60, deadline=None)
@given(lora_problem())
def test_merge_unmerge_round_trip(problem):
    _, W, A, B, s = problem
    # W + s·A·B − s·A·B: a sum of r products and two roundings of |W| + s·|A|·|B|
    size = float((W.abs() + s * A.abs() @ B.abs()).max())
    assert_close(unmerge(merge(W, A, B, s), A, B, s), W, depth=A.shape[1] + 2, scale=size)


@settings(max_examples=40, deadline=None)
@given(lora_problem())
def test_zero_B_leaves_q_unchanged(problem):
    X, W, A, B, s = problem
    out = lora_forward(X, W, A, torch.zeros_like(B), scaling=s)
    assert torch.equal(out.q, out.base)


def test_shape_mismatch_is_a_clear_error():
    ex = seed_example()
    with pytest.raises(ValueError, match="shapes do not chain"):
        lora_forward(ex.X, ex.W, ex.A, ex.B.T)


def test_peft_default_init_matches_peft():
    from peft import LoraConfig, get_peft_model
    d, k, r = 64, 32, 4
    model = get_peft_model(torch.nn.Sequential(torch.nn.Linear(d, k, bias=False)),
                           LoraConfig(r=r, lora_alpha=r, target_modules=["0"]))
    peft_A = model.base_model.model[0].lora_A["default"].weight.detach()  # r×d = Aᵀ
    peft_B = model.base_model.model[0].lora_B["default"].weight.detach()  # k×r = Bᵀ
    A, B = init_peft_default(d, k, r, torch.Generator().manual_seed(0))
    assert A.shape == peft_A.T.shape and B.shape == peft_B.T.shape
    assert torch.count_nonzero(B) == 0 == torch.count_nonzero(peft_B)
    bound = 1 / math.sqrt(d)
    assert peft_A.abs().max() <= bound and A.abs().max() <= bound
    assert A.abs().max() > 0.8 * bound  # it fills the range, not a narrower one


def test_gaussian_and_random_inits():
    g = torch.Generator().manual_seed(0)
    A, B = init_gaussian(400, 10, 4, g)
    assert torch.count_nonzero(B) == 0
    # sampling, not rounding: the std of 4000 draws is off by about 1/√(2·4000) ≈ 1.1 %, so 5 % is 4.5 standard errors
    assert A.std().item() == pytest.approx(1 / 4, rel=0.05)
    A, B = init_random(5, 3, 2, torch.Generator().manual_seed(1))
    assert torch.count_nonzero(A) == 10 and torch.count_nonzero(B) == 6


@pytest.mark.parametrize("r,alpha,rslora", [(2, 2.0, False), (1, 4.0, False), (3, 6.0, True)])
def test_against_peft_lora_linear(r, alpha, rslora):
    """PEFT's own layer, given the same W, A, B, gives the same Q and the same merged weight."""
    from peft import LoraConfig, get_peft_model
    ex = build_example("random", 7, 4, 6, 5, r, dtype=torch.float32)
    base = torch.nn.Sequential(torch.nn.Linear(6, 5, bias=False))
    with torch.no_grad():
        base[0].weight.copy_(ex.W.T)                      # PEFT stores Wᵀ
    model = get_peft_model(base, LoraConfig(r=r, lora_alpha=alpha, target_modules=["0"],
                                            use_rslora=rslora, init_lora_weights=False))
    layer = model.base_model.model[0]
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(ex.A.T)      # r×d
        layer.lora_B["default"].weight.copy_(ex.B.T)      # k×r
    s = lora_scaling(alpha, r, rslora)
    assert layer.scaling["default"] == pytest.approx(s, rel=rel_tol(torch.float64))  # α/r or α/√r, however written
    ours = lora_forward(*ex, scaling=s)
    # float32 sums of d = 6 and r products in PEFT's order (x·Wᵀ, x·Aᵀ·Bᵀ), against what they sum
    size = product_size(ex.X, ex.W) + s * product_size(ex.X, ex.A, ex.B)
    assert_close(model(ex.X).detach(), ours.q, depth=6 + r + 2, scale=size)
    merged = model.merge_and_unload()[0].weight.detach().T
    # W + s·(B·A)ᵀ against W + s·A·B: r products and two roundings of |W| + s·|A|·|B|
    assert_close(merged, merge(ex.W, ex.A, ex.B, s), depth=r + 2,
                 scale=float((ex.W.abs() + s * ex.A.abs() @ ex.B.abs()).max()))


def test_pick_device_override(monkeypatch):
    monkeypatch.setenv("LORA_DEVICE", "cpu")
    assert pick_device().type == "cpu"
    monkeypatch.setenv("LORA_DEVICE", "tpu")
    with pytest.raises(ValueError, match="LORA_DEVICE"):
        pick_device()


def test_pick_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.delenv("LORA_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device().type == "cpu"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_forward_matches_cpu():
    ex = seed_example()
    cpu = lora_forward(*ex)
    gpu = lora_forward(*(t.cuda() for t in ex))
    assert gpu.q.device.type == "cuda"
    # the GPU sums the d = 5 and r = 2 products in its own order
    assert_close(gpu.q.cpu(), cpu.q, depth=5 + 2, scale=product_size(ex.X, ex.W) + product_size(ex.X, ex.A, ex.B))
