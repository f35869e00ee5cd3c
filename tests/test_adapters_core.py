"""The adapters' core (lora_core.adapters) against its oracles: numpy's SVD of the formed ΔW, the LoRA paper's φ
written out directly, and PEFT's ``add_weighted_adapter`` for every combination the page offers."""
from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from peft import LoraConfig, get_peft_model
from torch import nn

from lora_core.adapters.merge import COMBINATIONS, Factors, merge_adapters
from lora_core.adapters.similarity import delta_cosine, similarity_grid, subspace_similarity
from lora_core.adapters.spectrum import (
    delta_singular_values,
    effective_rank,
    energy_share,
    spectrum,
    stable_rank,
)
from tolerances import rel_tol


def _factors(d, k, r, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(d, r, generator=g, dtype=dtype), torch.randn(r, k, generator=g, dtype=dtype)


# --- the spectrum ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("d,k,r", [(5, 3, 2), (64, 48, 8), (1024, 1024, 64), (4096, 64, 16), (300, 1024, 1)])
def test_singular_values_from_the_factors_equal_numpy_svd_of_the_formed_update(d, k, r):
    """Two thin QRs and an r×r SVD against numpy's SVD of the d×k matrix: within 1e-10 of the largest σ."""
    A, B = _factors(d, k, r, seed=d + k + r)
    s = 0.75
    ours = delta_singular_values(A, B, s).numpy()
    theirs = np.linalg.svd(s * (A.numpy() @ B.numpy()), compute_uv=False)
    assert ours.shape == (r,)
    assert np.abs(ours - theirs[:r]).max() <= 1e-10 * theirs[0]
    assert np.all(theirs[r:] <= 1e-10 * theirs[0])  # the formed matrix has no more than r


@settings(max_examples=60, deadline=None)
@given(d=st.integers(1, 40), k=st.integers(1, 40), r=st.integers(1, 12), true_rank=st.integers(0, 12),
       seed=st.integers(0, 10_000))
def test_at_most_the_true_rank_of_the_singular_values_are_nonzero(d, k, r, true_rank, seed):
    """A = G·H with G d×t and H t×r has rank t ≤ r: σ beyond t vanish to rounding; σ are non-negative and sorted,
    and ‖ΔW‖_F from them is the formed matrix's."""
    t = min(true_rank, r, d, k)
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d, t, generator=g, dtype=torch.float64) @ torch.randn(t, r, generator=g, dtype=torch.float64)
    B = torch.randn(r, k, generator=g, dtype=torch.float64)
    sigma = delta_singular_values(A, B)
    full = A @ B
    assert sigma.numel() == r and bool((sigma >= 0).all()) and bool((sigma[:-1] >= sigma[1:]).all())
    # rounding of the QRs and the r×r product: a few ulps of ‖A‖·‖B‖ per unit of depth
    size = float(torch.linalg.matrix_norm(A, 2) * torch.linalg.matrix_norm(B, 2))
    assert bool((sigma[t:] <= rel_tol(torch.float64, d + k + r) * size).all()), (sigma, t)
    norm = float(torch.linalg.matrix_norm(full))
    assert abs(spectrum(A, B).frobenius - norm) <= rel_tol(torch.float64, d + k + r) * max(size, 1e-300)


def test_effective_stable_rank_and_energy_of_known_spectra():
    assert effective_rank(torch.tensor([3.0, 0, 0])) == pytest.approx(1.0)
    assert effective_rank(torch.full((8,), 2.0, dtype=torch.float64)) == pytest.approx(8.0)
    assert effective_rank(torch.zeros(4)) == 0.0 and stable_rank(torch.zeros(4)) == 0.0
    sigma = torch.tensor([2.0, 1.0, 1.0], dtype=torch.float64)
    p = sigma / sigma.sum()
    assert effective_rank(sigma) == pytest.approx(math.exp(-float((p * p.log()).sum())))
    assert stable_rank(sigma) == pytest.approx(6 / 4)
    assert energy_share(sigma, 1) == pytest.approx(4 / 6) and energy_share(sigma, 3) == 1.0


# --- the similarity ----------------------------------------------------------------------------------------------

def _phi_direct(A1, A2, i, j):
    """The paper's formula, as written: right-singular vectors of the paper's A (r×d), i.e. of lora_A."""
    _, _, V1 = np.linalg.svd(A1.numpy().T)
    _, _, V2 = np.linalg.svd(A2.numpy().T)
    U1, U2 = V1.T[:, :i], V2.T[:, :j]
    return np.linalg.norm(U1.T @ U2, "fro") ** 2 / min(i, j)


@settings(max_examples=40, deadline=None)
@given(d=st.integers(8, 64), r1=st.integers(1, 8), r2=st.integers(1, 8), seed=st.integers(0, 10_000))
def test_subspace_similarity_is_the_papers_formula_bounded_and_one_for_itself(d, r1, r2, seed):
    A1, _ = _factors(d, 1, r1, seed)
    A2, _ = _factors(d, 1, r2, seed + 1)
    grid = similarity_grid(A1, A2)
    assert grid.shape == (r1, r2)
    for i in range(1, r1 + 1):
        for j in range(1, r2 + 1):
            assert grid[i - 1, j - 1] == pytest.approx(_phi_direct(A1, A2, i, j), abs=1e-12)
    assert bool((grid >= -1e-15).all()) and bool((grid <= 1 + 1e-12).all())
    for i in range(1, r1 + 1):
        assert subspace_similarity(A1, A1, i, i) == pytest.approx(1.0, abs=1e-12)


def test_delta_cosine_from_the_factors_equals_the_formed_matrices():
    A1, B1 = _factors(200, 150, 8, 1)
    A2, B2 = _factors(200, 150, 4, 2)
    A2[:, :2] += A1[:, :2]
    M1, M2 = 0.5 * A1 @ B1, -2.0 * A2 @ B2
    want = float((M1 * M2).sum() / (torch.linalg.matrix_norm(M1) * torch.linalg.matrix_norm(M2)))
    assert delta_cosine(A1, B1, 0.5, A2, B2, -2.0) == pytest.approx(want, abs=1e-12)
    assert delta_cosine(A1, B1, 0.5, A1, B1, 3.0) == pytest.approx(1.0, abs=1e-12)
    assert delta_cosine(A1, B1 * 0, 1.0, A2, B2, 1.0) == 0.0


# --- merging, against PEFT ---------------------------------------------------------------------------------------

class Two(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.q_proj, self.v_proj = nn.Linear(16, 12, bias=False), nn.Linear(16, 20, bias=False)
        with torch.no_grad():
            self.q_proj.weight.copy_(torch.randn(12, 16, generator=g))
            self.v_proj.weight.copy_(torch.randn(20, 16, generator=g))

    def forward(self, x):
        return self.q_proj(x), self.v_proj(x)


def _two_adapters(r1, r2, alpha1=8.0, alpha2=3.0):
    model = get_peft_model(Two(), LoraConfig(r=r1, lora_alpha=alpha1, target_modules=["q_proj", "v_proj"],
                                             init_lora_weights=False), adapter_name="one")
    model.add_adapter("two", LoraConfig(r=r2, lora_alpha=alpha2, target_modules=["q_proj", "v_proj"],
                                        init_lora_weights=False))
    ours = []
    for name in ("one", "two"):
        per = {}
        for m in ("q_proj", "v_proj"):
            layer = model.base_model.model.get_submodule(m)
            per[m] = Factors(layer.lora_A[name].weight.detach().T.clone(), layer.lora_B[name].weight.detach().T.clone(),
                             layer.scaling[name])
        ours.append(per)
    return model, ours


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_every_combination_equals_peft_add_weighted_adapter(combination):
    """PEFT merges two adapters of q_proj and v_proj (r 4 and 4, or 4 and 2 where ranks may differ); the merged
    lora_A and lora_B per module equal ours within 1e-6 in float32 (they are the same operations); DARE with the
    same seed."""
    r2 = 4 if combination in ("linear", "ties", "dare_linear") else 2
    model, ours = _two_adapters(4, r2)
    weights = [0.7, -1.3]
    kw = {"density": 0.5} if combination in ("ties", "dare_linear") else {}
    # PEFT first makes the merged adapter's layers (drawing their random start from torch's global generator), then
    # draws DARE's masks from it: the generator is seeded at that point, where its masks begin
    inject = model.base_model.inject_adapter

    def inject_then_seed(*args, **kwargs):
        inject(*args, **kwargs)
        torch.manual_seed(123)

    model.base_model.inject_adapter = inject_then_seed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.add_weighted_adapter(["one", "two"], weights, "merged", combination_type=combination, **kw)
    merged = merge_adapters(ours, weights, combination, seed=123, **kw)
    for m in ("q_proj", "v_proj"):
        layer = model.base_model.model.get_submodule(m)
        theirs_A, theirs_B = layer.lora_A["merged"].weight.detach().T, layer.lora_B["merged"].weight.detach().T
        assert merged[m].A.shape == theirs_A.shape and merged[m].B.shape == theirs_B.shape, m
        assert float((merged[m].A - theirs_A).abs().max()) <= 1e-6, (m, "A")
        assert float((merged[m].B - theirs_B).abs().max()) <= 1e-6, (m, "B")
        assert layer.scaling["merged"] == 1.0 and merged[m].r == layer.r["merged"]


def test_linear_carries_cross_terms_and_cat_and_full_rank_svd_are_exact():
    """What the page shows: linear's ΔW is Σ w_i·ΔW_i plus the cross terms ±√|w_i s_i|√|w_j s_j|·A_i·B_j; cat is exact;
    svd at rank r₁ + r₂ is exact too, below it the best approximation (Eckart–Young)."""
    _, ours = _two_adapters(4, 4)
    weights = [0.7, 1.3]
    f1, f2 = ours[0]["q_proj"], ours[1]["q_proj"]
    exact = weights[0] * f1.scaling * f1.A @ f1.B + weights[1] * f2.scaling * f2.A @ f2.B
    lin = merge_adapters(ours, weights, "linear")["q_proj"]
    a1, a2 = math.sqrt(weights[0] * f1.scaling), math.sqrt(weights[1] * f2.scaling)
    cross = a1 * a2 * (f1.A @ f2.B + f2.A @ f1.B)
    size = float((exact.abs() + cross.abs()).max())
    assert float((lin.A @ lin.B - (exact + cross)).abs().max()) <= 1e-5 * size
    cat = merge_adapters(ours, weights, "cat")["q_proj"]
    assert float((cat.A @ cat.B - exact).abs().max()) <= 1e-5 * float(exact.abs().max())
    full = merge_adapters(ours, weights, "svd", svd_rank=8)["q_proj"]
    assert float((full.A @ full.B - exact).abs().max()) <= 1e-5 * float(exact.abs().max())
    cut = merge_adapters(ours, weights, "svd", svd_rank=2)["q_proj"]
    sigma = torch.linalg.svdvals(exact.double())
    assert float(torch.linalg.matrix_norm((cut.A @ cut.B - exact).double())) == pytest.approx(
        float(sigma[2:].square().sum().sqrt()), rel=1e-5)


def test_merge_refuses_mismatched_ranks_and_weights():
    _, ours = _two_adapters(4, 2)
    with pytest.raises(ValueError, match="same r"):
        merge_adapters(ours, [1.0, 1.0], "linear")
    with pytest.raises(ValueError, match="one weight per adapter"):
        merge_adapters(ours, [1.0], "cat")
    with pytest.raises(ValueError, match="not a combination"):
        merge_adapters(ours, [1.0, 1.0], "magic")
    assert copy.deepcopy(ours)  # untouched
