"""Example matrices keep their values as sizes grow, and edits land where they should."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_core import MAX_DIM, build_example, lora_forward, seed_example


@settings(max_examples=40, deadline=None)
@given(preset=st.sampled_from(["seed", "random"]), seed=st.integers(0, 1000),
       n=st.integers(1, 8), d=st.integers(1, 10), k=st.integers(1, 10), grow=st.integers(1, 6))
def test_growing_keeps_existing_values(preset, seed, n, d, k, grow):
    r = min(d, k)
    small = build_example(preset, seed, n, d, k, r)
    big = build_example(preset, seed, n + grow, d + grow, k + grow, r + grow)
    assert torch.equal(big.X[:n, :d], small.X)
    assert torch.equal(big.W[:d, :k], small.W)
    assert torch.equal(big.A[:d, :r], small.A)
    assert torch.equal(big.B[:r, :k], small.B)


def test_seed_numbers_stay_in_the_corner_as_r_grows():
    seed = seed_example()
    ex = build_example("seed", 0, 3, 5, 3, 3)
    assert torch.equal(ex.A[:, :2], seed.A) and torch.equal(ex.B[:2], seed.B)
    assert ex.A.shape == (5, 3) and ex.B.shape == (3, 3)


def test_seeds_change_only_the_filled_cells():
    a, b = build_example("seed", 1, 4, 6, 4, 2), build_example("seed", 2, 4, 6, 4, 2)
    assert torch.equal(a.X[:3, :5], b.X[:3, :5])
    assert not torch.equal(a.X, b.X)


def test_peft_and_gaussian_presets_start_at_the_base_model():
    for preset in ("peft", "gaussian"):
        ex = build_example(preset, 0, 3, 5, 3, 2)
        assert torch.count_nonzero(ex.B) == 0
        out = lora_forward(*ex)
        assert torch.equal(out.q, out.base)
    assert build_example("peft", 0, 3, 16, 3, 2).A.abs().max() <= 1 / 4


def test_overrides_apply_in_range_and_are_ignored_outside():
    ex = build_example("seed", 0, 3, 5, 3, 2, overrides=[("W", 0, 0, 9.0), ("A", 4, 1, -1.5), ("X", 10, 0, 7.0)])
    assert ex.W[0, 0] == 9.0 and ex.A[4, 1] == -1.5
    assert ex.X.shape == (3, 5)


@pytest.mark.parametrize("args,match", [
    (("nope", 0, 3, 5, 3, 2), "unknown preset"),
    (("seed", 0, 3, 5, 3, 4), "rank r = 4"),
    (("seed", 0, 3, 5, 3, 0), "rank r = 0"),
    (("seed", 0, 0, 5, 3, 1), "n = 0"),
    (("seed", 0, 3, MAX_DIM + 1, 3, 1), "d = 1025"),
])
def test_bad_sizes_are_refused_by_name(args, match):
    with pytest.raises(ValueError, match=match):
        build_example(*args)
