"""lora_core.rank: rank of LoRA updates, Eckart–Young optimality, and the error curve."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_core.lora import delta_weight
from lora_core.rank import (
    best_rank_r,
    default_tolerance,
    effective_rank,
    rank_error_curve,
    seeded_full_rank_update,
    singular_values,
)
from tolerances import assert_close, product_size, rel_tol

DT = torch.float64


def rand(seed, *shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


def rel_err(M, approx):
    return float(torch.linalg.matrix_norm(M - approx) / torch.linalg.matrix_norm(M))


def svd_depth(M):
    """An SVD is backward stable: each σ within ULPS·√(d·k·min(d, k)) ulps of σ_max (Householder steps of d·k)."""
    d, k = M.shape
    return d * k * min(d, k)


def energy_slack(M, approx=None):
    """How far a squared relative error (a share of ‖M‖²) may be off by rounding: each σ² or entry² within twice the
    SVD's rounding of the total, and a candidate's ‖M − approx‖ also carries the rounding of |approx|."""
    ratio = 0.0 if approx is None else float(torch.linalg.matrix_norm(approx) / torch.linalg.matrix_norm(M))
    return 2 * rel_tol(DT, svd_depth(M)) * (1 + ratio) ** 2


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(1, 24), k=st.integers(1, 24), r=st.integers(1, 24),
       s=st.floats(-8, 8, allow_nan=False).filter(lambda x: abs(x) > 1e-3))
def test_lora_update_has_rank_at_most_r(seed, d, k, r, s):
    A, B = rand(seed, d, r), rand(seed + 1, r, k)
    dW = delta_weight(A, B, s)
    assert effective_rank(dW) <= r
    assert effective_rank(dW) <= min(d, k)
    # Gaussian factors are generic, so the bound is attained
    assert effective_rank(dW) == min(d, k, r)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(2, 12), k=st.integers(2, 12), data=st.data())
def test_truncated_svd_beats_every_rank_r_candidate(seed, d, k, data):
    r = data.draw(st.integers(1, min(d, k)))
    M = rand(seed, d, k)
    best = best_rank_r(M, r)
    # random rank-r candidates A·B, at several scales
    for i in range(20):
        A, B = rand(seed + 10 + i, d, r), rand(seed + 100 + i, r, k)
        for scale in (1e-2, 0.3, 1.0):
            # squared, so that no square root magnifies the rounding of a small error
            X = scale * A @ B
            assert rel_err(M, X) ** 2 >= best.rel_error ** 2 - energy_slack(M, X)
    # small perturbations of the optimum's own factors: moving off it never helps
    for i in range(20):
        eps = 10.0 ** -(1 + i % 5)
        A = best.A + eps * rand(seed + 200 + i, d, r)
        B = best.B + eps * rand(seed + 300 + i, r, k)
        assert rel_err(M, A @ B) ** 2 >= best.rel_error ** 2 - energy_slack(M, A @ B)


def test_best_rank_r_pieces():
    M = rand(5, 9, 6)
    for r in range(1, 7):
        best = best_rank_r(M, r)
        assert best.A.shape == (9, r) and best.B.shape == (r, 6)
        assert_close(best.A @ best.B, best.approx, depth=r, scale=product_size(best.A, best.B))  # r products
        assert effective_rank(best.approx) == r
        assert best.rel_error == rel_err(M, best.approx)  # the same formula, ‖M − M_r‖/‖M‖: the same bits
    # all six σ kept: M back, to the SVD's rounding of σ_max
    assert_close(best_rank_r(M, 6).approx, M, depth=svd_depth(M), scale=float(singular_values(M)[0]))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(1, 16), k=st.integers(1, 16))
def test_relative_error_squared_is_the_discarded_energy(seed, d, k):
    M = rand(seed, d, k)
    sigma = singular_values(M)
    curve = rank_error_curve(M)
    for r in range(1, min(d, k) + 1):
        discarded = float(sigma[r:].square().sum() / sigma.square().sum())
        assert best_rank_r(M, r).rel_error ** 2 == pytest.approx(discarded, rel=0, abs=energy_slack(M))
        assert float(curve.rel_error[r - 1]) ** 2 == pytest.approx(discarded, rel=0, abs=energy_slack(M))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(1, 20), k=st.integers(1, 20),
       decay=st.floats(0, 3, allow_nan=False))
def test_error_curve_is_non_increasing_and_ends_at_zero(seed, d, k, decay):
    M = seeded_full_rank_update(d, k, seed, decay=decay)
    curve = rank_error_curve(M)
    assert curve.r.tolist() == list(range(1, min(d, k) + 1))
    assert torch.all(curve.rel_error[1:] <= curve.rel_error[:-1])
    assert float(curve.rel_error[-1]) == 0.0
    assert torch.all((curve.rel_error >= 0) & (curve.rel_error <= 1))


def test_seeded_full_rank_update():
    M = seeded_full_rank_update(12, 7, seed=3, decay=1.0)
    assert M.shape == (12, 7) and M.dtype == DT
    assert torch.equal(M, seeded_full_rank_update(12, 7, seed=3, decay=1.0))
    assert not torch.equal(M, seeded_full_rank_update(12, 7, seed=4, decay=1.0))
    assert effective_rank(M) == 7 == torch.linalg.matrix_rank(M)
    # the σ it was built with, to the SVD's rounding of σ_max = 1
    assert_close(singular_values(M), 1.0 / torch.arange(1, 8, dtype=DT), depth=svd_depth(M), scale=1.0)
    flat = seeded_full_rank_update(6, 6, seed=0, decay=0.0)
    assert_close(singular_values(flat), torch.ones(6, dtype=DT), depth=svd_depth(flat))
    # a flat spectrum: rank r keeps exactly r/6 of the energy (a share of the whole: twice the σ's rounding)
    assert_close(rank_error_curve(flat).rel_error ** 2, 1 - torch.arange(1, 7, dtype=DT) / 6, depth=svd_depth(flat),
                 scale=2.0)


def test_effective_rank_matches_torch_and_tolerance():
    M = rand(0, 8, 3) @ rand(1, 3, 10)
    assert effective_rank(M) == int(torch.linalg.matrix_rank(M)) == 3
    assert default_tolerance(M) > 0
    assert effective_rank(M, tol=float(singular_values(M)[0]) + 1) == 0
    assert effective_rank(M, tol=0.0) >= 3


def test_zero_matrix():
    Z = torch.zeros(4, 3, dtype=DT)
    assert effective_rank(Z) == 0
    assert best_rank_r(Z, 2).rel_error == 0.0
    assert torch.all(rank_error_curve(Z).rel_error == 0)


@pytest.mark.parametrize("call,match", [
    (lambda: best_rank_r(rand(0, 4, 3), 4), "exceeds"),
    (lambda: best_rank_r(rand(0, 4, 3), 0), "positive integer"),
    (lambda: singular_values(torch.ones(3)), "2-D"),
    (lambda: singular_values(torch.tensor([[1.0, float("nan")]])), "NaN"),
    (lambda: effective_rank(rand(0, 2, 2), tol=-1.0), "tol"),
    (lambda: seeded_full_rank_update(0, 3, 1), "positive integer"),
    (lambda: seeded_full_rank_update(3, 3, 1, decay=-1), "decay"),
])
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("d,k", [(5, 3), (12, 40), (64, 64)])
def test_best_rank_r_from_one_svd_is_best_rank_r_bit_for_bit(d, k):
    """The Rank page takes ΔW*'s SVD once for every r; each r's copy must be exactly what best_rank_r gives."""
    from lora_core.rank import best_rank_r_from_svd
    M = seeded_full_rank_update(d, k, seed=4, decay=0.7)
    U, S, Vh = torch.linalg.svd(M, full_matrices=False)
    for r in range(1, min(d, k) + 1):
        want, got = best_rank_r(M, r), best_rank_r_from_svd(M, U, S, Vh, r)
        for a, b in zip(got[:4], want[:4]):
            assert torch.equal(a, b)
        assert got.rel_error == want.rel_error
    with pytest.raises(ValueError, match="exceeds"):
        best_rank_r_from_svd(M, U, S, Vh, min(d, k) + 1)


def test_spectrum_is_the_singular_values_and_the_default_tolerance():
    from lora_core.rank import spectrum
    M = delta_weight(torch.randn(30, 4, dtype=DT), torch.randn(4, 20, dtype=DT), 0.5)
    sigma, tol = spectrum(M)
    assert torch.equal(sigma, singular_values(M)) and tol == default_tolerance(M)
