"""bitsandbytes as the oracle for NF4 and QLoRA on the CPU: codes, absmax and dequantized values bit for bit,
the bits a weight costs, and PEFT's LoRA over a real ``bnb.nn.Linear4bit`` forward and trained."""
from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

# bitsandbytes and PEFT are dev requirements and this file's oracles: missing, they fail here, never skip
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # bitsandbytes warns that its optional `kernels` package is absent
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnbf
from peft import LoraConfig, get_peft_model
from peft_training import peft_adamw_losses

from lora_core.family import FamilySettings, family_run, start
from lora_core.lora import seed_example
from lora_core.nf4 import NF4_LEVELS, nf4_bits_per_weight, nf4_levels, nf4_quantize
from lora_core.training import make_target
from tolerances import product_size, rel_tol


def bnb_nf4(W: torch.Tensor, blocksize: int = 64):
    """bitsandbytes' codes (as d×k), absmax and dequantized W̃ (as d×k) for W stored as PEFT stores it, Wᵀ."""
    stored = W.T.contiguous().float()
    packed, state = bnbf.quantize_4bit(stored, blocksize=blocksize, quant_type="nf4")
    flat = packed.reshape(-1)
    codes = torch.stack([flat >> 4, flat & 0xF], dim=1).reshape(-1)[: stored.numel()].long()
    # dequantize_4bit hands a packed weight of one row ([1, m], e.g. a 2×1 Wᵀ's single byte) back transposed,
    # a shim for an old calling convention (bitsandbytes/functional.py): the values are read in stored order
    dequantized = bnbf.dequantize_4bit(packed, state).reshape(stored.shape)
    return codes.view(stored.shape).T, state.absmax, dequantized.T


def assert_same_as_bnb(W: torch.Tensor, blocksize: int = 64):
    ours = nf4_quantize(W, blocksize)
    codes, absmax, dequantized = bnb_nf4(W, blocksize)
    assert torch.equal(ours.codes, codes)
    assert torch.equal(ours.absmax, absmax)
    assert torch.equal(ours.dequantized, dequantized)  # bit for bit: the same float32 products


def test_the_seed_w_q_in_nf4_is_bitsandbytes_to_the_bit():
    W = seed_example().W
    assert_same_as_bnb(W)
    q = nf4_quantize(W)
    assert q.absmax.tolist() == [pytest.approx(0.4, rel=2**-24)]  # one block: 15 weights, absmax 0.4
    assert round(float(q.dequantized[0, 0]), 4) == 0.1763 and round(float(q.dequantized[1, 1]), 4) == 0.2892


@settings(max_examples=40, deadline=None)
@given(d=st.integers(1, 256), k=st.integers(1, 256), seed=st.integers(0, 2**31 - 1),
       scale=st.sampled_from([1e-3, 0.02, 1.0, 300.0]))
@example(d=1, k=2, seed=0, scale=1e-3)  # Wᵀ 2×1 packs into one byte, which dequantize_4bit returns transposed
@example(d=3, k=5, seed=1, scale=1.0)   # an odd last dimension of Wᵀ: bitsandbytes' generic CPU path
def test_random_matrices_up_to_256_by_256_are_bitsandbytes_to_the_bit(d, k, seed, scale):
    g = torch.Generator().manual_seed(seed)
    # bitsandbytes dequantizes a Wᵀ with an odd last dimension by a torch.compile'd function, compiled again for
    # each new shape (seconds of C++ each): run as plain torch, the same multiplications (the seed's W_Q, above,
    # goes through the compiled one)
    with torch.compiler.set_stance("force_eager"):
        assert_same_as_bnb(torch.randn(d, k, generator=g) * scale)


@pytest.mark.parametrize("blocksize", [64, 128, 256])
def test_zeros_absmax_ties_and_other_block_sizes_are_bitsandbytes_to_the_bit(blocksize):
    g = torch.Generator().manual_seed(5)
    W = torch.randn(40, 24, generator=g)
    W[:, :8] = 0.0                                   # whole blocks of zeros (Wᵀ's first rows)
    W[3, 10], W[7, 11] = 5.0, -5.0                   # values at +absmax and −absmax of their blocks
    mid = (nf4_levels()[8] + nf4_levels()[9]) / 2   # a value exactly halfway between two levels
    W[0, 20], W[1, 20] = mid * 5.0, 5.0
    assert_same_as_bnb(W, blocksize)
    q = nf4_quantize(W, blocksize)
    assert (q.codes[:, :8] == 7).all() and (q.dequantized[:, :8] == 0).all()  # level 7 is the exact zero
    assert q.codes[3, 10] == 15 and q.codes[7, 11] == 0


def test_a_full_block_multiplies_by_one_over_absmax_and_a_last_short_block_divides():
    """x = 0.30375817 in a block whose absmax is 1.4925132: x·(1/absmax) rounds to exactly the midpoint between
    levels 9 and 10 (so level 9), x/absmax to just above it (level 10). bitsandbytes multiplies in a full block
    of 64 and divides in the last, shorter one; so must we, or this is the one place the codes differ."""
    absmax, x = 1.4925131797790527, 0.3037581741809845
    stored = torch.full((69,), 0.01)           # Wᵀ read row by row: a full block of 64, then a last block of 5
    stored[[0, 64]], stored[[1, 65]] = absmax, x
    W = stored.view(3, 23).T                   # d×k = 23×3, so that Wᵀ is the 69 values in that order
    assert_same_as_bnb(W)
    codes = nf4_quantize(W).codes.T.reshape(-1)
    assert (int(codes[1]), int(codes[65])) == (9, 10)


def test_the_nf4_code_is_sixteen_normal_quantiles_with_an_exact_zero():
    """QLoRA's construction (Dettmers et al. 2023, eq. 4, as bitsandbytes' create_normal_map builds it): 8 quantiles
    of N(0, 1) for the positive half and 7 for the negative, at probabilities evenly spaced from 0.5 to
    δ = 0.9677083, scaled so the largest is 1; zero is a level of its own."""
    assert len(NF4_LEVELS) == 16 and NF4_LEVELS[7] == 0.0 and sorted(NF4_LEVELS) == list(NF4_LEVELS)
    assert nf4_levels().tolist() == bnbf.get_4bit_type("nf4", device="cpu").tolist()
    offset = 0.9677083
    # bitsandbytes spaces the probabilities with torch.linspace in float32 (its default), then takes the quantiles
    probabilities = lambda count: torch.linspace(offset, 0.5, count, dtype=torch.float32)[:-1].double()
    positive = torch.special.ndtri(probabilities(9))
    negative = -torch.special.ndtri(probabilities(8))
    levels = torch.cat([positive, torch.zeros(1, dtype=torch.float64), negative]).sort().values
    levels = levels / levels.abs().max()
    # the table holds those values as float32 computed them: each within one float32 ulp (7.6e-8 at most; from
    # float64 probabilities the -0.0911 level would be 4.8e-7 away, eight ulps)
    assert torch.allclose(nf4_levels(torch.float64), levels, rtol=2**-23, atol=0)
    assert NF4_LEVELS[0] == -1.0 and NF4_LEVELS[-1] == 1.0
    assert sum(1 for v in NF4_LEVELS if v > 0) == 8 and sum(1 for v in NF4_LEVELS if v < 0) == 7


@settings(max_examples=60, deadline=None)
@given(d=st.integers(1, 40), k=st.integers(1, 40), seed=st.integers(0, 2**31 - 1))
def test_each_dequantized_weight_lies_within_one_nf4_step_of_w(d, k, seed):
    W = torch.randn(d, k, generator=torch.Generator().manual_seed(seed))
    q = nf4_quantize(W)
    levels = nf4_levels()
    scale = q.absmax[q.block]
    low = levels[(q.codes - 1).clamp(min=0)] * scale
    high = levels[(q.codes + 1).clamp(max=15)] * scale
    assert bool(((low <= W) & (W <= high)).all())
    # and the level is the nearest one, up to float32's rounding of w/absmax
    nearest = (W[..., None] / scale[..., None] - levels).abs().min(dim=-1).values
    chosen = (W / scale - levels[q.codes]).abs()
    assert bool((chosen <= nearest + 2 * torch.finfo(torch.float32).eps).all())


@pytest.mark.parametrize("double_quant,bits", [(False, 4.5), (True, 4 + 8 / 64 + 32 / (64 * 256))])
def test_bits_per_weight_are_what_bitsandbytes_stores(double_quant, bits):
    assert nf4_bits_per_weight(64, double_quant) == bits
    assert round(nf4_bits_per_weight(64, True), 3) == 4.127
    W = torch.randn(256, 256, generator=torch.Generator().manual_seed(0))
    packed, state = bnbf.quantize_4bit(W, blocksize=64, quant_type="nf4", compress_statistics=double_quant)
    stored = packed.numel() * packed.element_size() + state.absmax.numel() * state.absmax.element_size()
    if double_quant:  # 8-bit absmax, then one float32 per 256 of them (its code table and offset are per tensor)
        assert state.absmax.dtype == torch.uint8 and state.state2.blocksize == 256
        stored += state.state2.absmax.numel() * 4
    assert stored * 8 / W.numel() == bits


# --- QLoRA: PEFT's LoRA over bitsandbytes' Linear4bit ----------------------------------------------------------

class One(nn.Module):
    def __init__(self, W: torch.Tensor):
        super().__init__()
        layer = bnb.nn.Linear4bit(W.shape[0], W.shape[1], bias=False, compute_dtype=torch.float32, quant_type="nf4",
                                  compress_statistics=False)
        layer.weight = bnb.nn.Params4bit(W.T.contiguous().float(), requires_grad=False, quant_type="nf4",
                                         compress_statistics=False, blocksize=64)
        self.proj = layer.to("cpu")

    def forward(self, x):
        return self.proj(x)


def _peft_qlora(W, A, B, alpha):
    model = get_peft_model(One(W), LoraConfig(r=A.shape[1], lora_alpha=alpha, target_modules=["proj"],
                                              init_lora_weights=False, lora_dropout=0.0))
    layer = model.base_model.model.proj
    assert isinstance(layer.base_layer, bnb.nn.Linear4bit) and layer.base_layer.weight.dtype == torch.uint8
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(A.T)
        layer.lora_B["default"].weight.copy_(B.T)
    return model, layer


@pytest.mark.parametrize("d,k,r", [(5, 3, 2), (96, 40, 4)])
def test_qlora_forward_is_x_times_the_dequantized_w_plus_s_a_b(d, k, r):
    if (d, k) == (5, 3):
        X, W, A, B = seed_example(torch.float32)
    else:
        g = torch.Generator().manual_seed(1)
        X, W = torch.randn(6, d, generator=g), torch.randn(d, k, generator=g) * 0.05
        A, B = torch.randn(d, r, generator=g) * 0.1, torch.randn(r, k, generator=g) * 0.1
    model, layer = _peft_qlora(W, A, B, alpha=2.0 * r)
    s = layer.scaling["default"]
    W_tilde = nf4_quantize(W).dequantized
    ours = X @ (W_tilde + s * A @ B)
    with torch.no_grad():
        theirs = model(X)
    assert float((ours - theirs).abs().max()) <= rel_tol(torch.float32, d + r) * 2 * product_size(
        X, W_tilde.abs() + s * A.abs() @ B.abs())


def test_qlora_adamw_steps_match_peft_over_linear4bit():
    """Five AdamW steps in float32 on both sides: our QLoRA (LoRA over W̃) against PEFT over Linear4bit."""
    g = torch.Generator().manual_seed(3)
    X, W = torch.randn(8, 64, generator=g), torch.randn(64, 16, generator=g) * 0.1
    T = make_target(X, W, r_star=2, seed=4).T
    s = FamilySettings(r=4, alpha=8.0, lr=5e-3, steps=5, seed=6)
    ours = family_run("qlora", X, W, T, s)
    params, _ = start("qlora", W, s)
    model, _ = _peft_qlora(W, params["A"], params["B"], s.alpha)
    losses, trained = peft_adamw_losses(model, X, T, s)
    assert ours.trained == sum(p.numel() for p in trained) == 4 * (64 + 16)
    # float32 on both sides, sums over d = 64 in other orders, five steps: ulps of each loss, a random walk
    bound = rel_tol(torch.float32, 64 * (s.steps + 1))
    worst = max(abs(a - b) / b for a, b in zip(ours.losses, losses))
    assert worst <= bound, (worst, bound)
    assert math.isfinite(ours.losses[-1]) and ours.losses[-1] < ours.losses[0]
