"""lora_core.attention against torch's scaled_dot_product_attention, with and without LoRA."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_core.attention import (
    PROJECTIONS,
    attention_forward,
    lora_param_table,
    make_attention_weights,
    merge_heads,
    split_heads,
)
from lora_core.lora import SEED_A, SEED_B, SEED_W, lora_forward, seed_example
from lora_core.scale import count_lora_params
from tolerances import assert_close, attention_sizes, product_size

DT = torch.float64


def rand(g, *shape):
    return torch.randn(*shape, generator=g, dtype=DT)


def make_case(seed, n, d_model, heads, d_head, d_v, d_out, r, targets):
    g = torch.Generator().manual_seed(seed)
    X = rand(g, n, d_model)
    Ws = {"q": rand(g, d_model, heads * d_head), "k": rand(g, d_model, heads * d_head),
          "v": rand(g, d_model, heads * d_v), "o": rand(g, heads * d_v, d_out)}
    lora = {t: (rand(g, Ws[t].shape[0], r), rand(g, r, Ws[t].shape[1])) for t in targets}
    return X, Ws, lora


def sdpa_oracle(X, Ws, lora, heads, scaling, causal=False):
    # merge first (W + s·A·B), then let torch do the attention: an independent path
    eff = {t: W + (scaling * lora[t][0] @ lora[t][1] if t in lora else 0) for t, W in Ws.items()}
    to4 = lambda M: split_heads(M, heads).unsqueeze(0)  # (1, h, n, w)
    ctx = F.scaled_dot_product_attention(to4(X @ eff["q"]), to4(X @ eff["k"]), to4(X @ eff["v"]),
                                         is_causal=causal)
    context = merge_heads(ctx.squeeze(0))
    return context, context @ eff["o"]



@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 7), d_model=st.integers(1, 9),
       heads=st.integers(1, 4), d_head=st.integers(1, 5), d_v=st.integers(1, 5), d_out=st.integers(1, 6),
       r=st.integers(1, 3), targets=st.sets(st.sampled_from(PROJECTIONS)),
       scaling=st.floats(-2, 2, allow_nan=False), causal=st.booleans())
def test_matches_sdpa(seed, n, d_model, heads, d_head, d_v, d_out, r, targets, scaling, causal):
    X, Ws, lora = make_case(seed, n, d_model, heads, d_head, d_v, d_out, r, targets)
    tr = attention_forward(X, Ws["q"], Ws["k"], Ws["v"], Ws["o"], heads=heads, lora=lora,
                           scaling=scaling, causal=causal)
    context, out = sdpa_oracle(X, Ws, lora, heads, scaling, causal)
    size = attention_sizes(X, Ws, lora, heads, scaling)
    assert_close(tr.context, context, depth=size["depth"], scale=size["context"])
    assert_close(tr.out, out, depth=size["depth"], scale=size["out"])
    assert tr.q.shape == (n, heads * d_head) and tr.v.shape == (n, heads * d_v)
    assert tr.scores.shape == tr.weights.shape == (heads, n, n)
    assert tr.out.shape == (n, d_out)


@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("targets", [(), ("q", "v"), ("q", "k", "v", "o")])
def test_matches_sdpa_fixed_shapes(heads, targets):
    X, Ws, lora = make_case(7, 6, 8, heads, 4, 4, 8, 2, targets)
    tr = attention_forward(X, *(Ws[t] for t in PROJECTIONS), heads=heads, lora=lora, scaling=0.5)
    context, out = sdpa_oracle(X, Ws, lora, heads, 0.5)
    size = attention_sizes(X, Ws, lora, heads, 0.5)
    assert_close(tr.context, context, depth=size["depth"], scale=size["context"])
    assert_close(tr.out, out, depth=size["depth"], scale=size["out"])


def test_intermediates_are_the_textbook_formulas():
    X, Ws, _ = make_case(3, 5, 6, 2, 3, 3, 6, 1, ())
    tr = attention_forward(X, *(Ws[t] for t in PROJECTIONS), heads=2)
    size = attention_sizes(X, Ws, {}, 2, 1.0)
    for h in range(2):
        cols = slice(3 * h, 3 * h + 3)
        Qh, Kh, Vh = ((X @ Ws[t])[:, cols] for t in "qkv")
        S = Qh @ Kh.T / math.sqrt(3)
        for got, want, name in ((tr.scores[h], S, "scores"), (tr.weights[h], torch.softmax(S, dim=1), "weights"),
                                (tr.context[:, cols], torch.softmax(S, dim=1) @ Vh, "context")):
            assert_close(got, want, depth=size["depth"], scale=size[name], what=name)
    # each row sums 5 weights of at most 1
    assert_close(tr.weights.sum(-1), torch.ones(2, 5, dtype=DT), depth=5)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 6), d_model=st.integers(1, 8),
       heads=st.integers(1, 3), r=st.integers(1, 4), targets=st.sets(st.sampled_from(PROJECTIONS)),
       scaling=st.floats(-4, 4, allow_nan=False))
def test_zero_B_gives_identical_attention(seed, n, d_model, heads, r, targets, scaling):
    X, Ws, lora = make_case(seed, n, d_model, heads, 2, 3, d_model, r, targets)
    zero_B = {t: (A, torch.zeros_like(B)) for t, (A, B) in lora.items()}
    plain = attention_forward(X, *(Ws[t] for t in PROJECTIONS), heads=heads)
    adapted = attention_forward(X, *(Ws[t] for t in PROJECTIONS), heads=heads, lora=zero_B, scaling=scaling)
    for a, b in zip(plain, adapted):
        assert torch.equal(a, b)  # adding s·(X·A)·0 = 0 changes not a single bit


def test_causal_mask_hides_later_tokens():
    X, Ws, _ = make_case(1, 4, 4, 1, 4, 4, 4, 1, ())
    tr = attention_forward(X, *(Ws[t] for t in PROJECTIONS), causal=True)
    assert torch.all(tr.weights[0].triu(1) == 0)
    assert tr.weights[0, 0, 0] == 1


def test_split_and_merge_heads_are_inverse():
    M = torch.arange(24.0).reshape(3, 8)
    S = split_heads(M, 2)
    assert S.shape == (2, 3, 4) and torch.equal(S[1], M[:, 4:])
    assert torch.equal(merge_heads(S), M)


# --- seeded weights ---------------------------------------------------------------------

def test_seed_preset_uses_the_blog_numbers():
    w = make_attention_weights(5, seed=0)
    assert w.W_Q.shape == (5, 3) and w.W_O.shape == (3, 5)
    assert torch.equal(w.W_Q, torch.tensor(SEED_W, dtype=DT))
    assert torch.equal(w.lora["q"][0], torch.tensor(SEED_A, dtype=DT))
    assert torch.equal(w.lora["q"][1], torch.tensor(SEED_B, dtype=DT))
    ex = seed_example()
    tr = attention_forward(ex.X, w.W_Q, w.W_K, w.W_V, w.W_O, lora={"q": w.lora["q"]})
    # the same Q = X·W + X·A·B: sums of d = 5 and r = 2 products
    assert_close(tr.q, lora_forward(ex.X, ex.W, ex.A, ex.B).q, depth=5 + 2,
                 scale=product_size(ex.X, ex.W) + product_size(ex.X, ex.A, ex.B))


def test_weights_are_deterministic_and_stable_when_growing():
    a = make_attention_weights(5, seed=3, r=2)
    b = make_attention_weights(5, seed=3, r=2)
    big = make_attention_weights(8, seed=3, r=3, heads=2, d_head=4)
    for x, y in zip(a[:4], b[:4]):
        assert torch.equal(x, y)
    assert torch.equal(big.W_Q[:5, :3], a.W_Q)
    assert torch.equal(big.W_K[:5, :3], a.W_K)
    assert torch.equal(big.lora["v"][0][:5, :2], a.lora["v"][0])
    assert not torch.equal(make_attention_weights(5, seed=4).W_K, a.W_K)


@pytest.mark.parametrize("preset", ["seed", "random"])
def test_weight_shapes_and_lora_pairs(preset):
    w = make_attention_weights(12, seed=1, r=3, heads=3, preset=preset)
    width = 3 * (3 if preset == "seed" else 4)
    assert w.W_Q.shape == w.W_K.shape == w.W_V.shape == (12, width) and w.W_O.shape == (width, 12)
    for p, W in zip(PROJECTIONS, w[:4]):
        A, B = w.lora[p]
        assert A.shape == (W.shape[0], 3) and B.shape == (3, W.shape[1])
    tr = attention_forward(torch.ones(2, 12, dtype=DT), *w[:4], heads=3, lora=w.lora)
    assert tr.out.shape == (2, 12)


def test_make_weights_validation():
    with pytest.raises(ValueError, match="preset"):
        make_attention_weights(5, 0, preset="peft")
    with pytest.raises(ValueError, match="exceeds"):
        make_attention_weights(5, 0, r=4)  # seed W_Q is 5×3
    with pytest.raises(ValueError, match="heads"):
        make_attention_weights(5, 0, heads=0)


# --- validation -------------------------------------------------------------------------

def test_attention_validation():
    X, Ws, lora = make_case(0, 3, 4, 2, 2, 2, 4, 1, ("q",))
    args = [Ws[t] for t in PROJECTIONS]
    with pytest.raises(ValueError, match="unknown LoRA projection"):
        attention_forward(X, *args, heads=2, lora={"ffn": lora["q"]})
    with pytest.raises(ValueError, match="not divisible"):
        attention_forward(X, *args, heads=3)
    with pytest.raises(ValueError, match="rows"):
        attention_forward(X[:, :3], *args, heads=2)
    with pytest.raises(ValueError, match="must match"):
        attention_forward(X, Ws["q"], Ws["k"][:, :2], Ws["v"], Ws["o"], heads=2)
    with pytest.raises(ValueError, match="positive integer"):
        attention_forward(X, *args, heads=0)
    with pytest.raises(ValueError, match="shapes do not chain"):
        attention_forward(X, *args, heads=2, lora={"k": (lora["q"][0], lora["q"][1][:, :1])})


# --- parameter table --------------------------------------------------------------------

def test_param_table_rows():
    rows = lora_param_table(768, 3072, 8, {"q", "v"}, vocab=50265)
    table = {row.matrix: row for row in rows}
    assert [row.matrix for row in rows] == ["W_Q", "W_K", "W_V", "W_O", "FFN W_1", "FFN W_2", "Embedding"]
    assert table["W_Q"] == ("W_Q", (768, 768), 768 * 768, 8 * 1536)
    assert table["W_K"].trainable == 0 and table["W_K"].frozen == 768 * 768
    assert table["FFN W_2"].shape == (3072, 768)
    assert table["Embedding"] == ("Embedding", (50265, 768), 50265 * 768, 0)
    # one layer's adapters × 12 layers = the RoBERTa-base paper figure
    assert 12 * sum(row.trainable for row in rows) == count_lora_params("roberta-base", {"q", "v"}, 8)


def test_param_table_ffn_and_validation():
    rows = lora_param_table(4, 16, 2, ["ffn"], 10)
    assert [row.trainable for row in rows] == [0, 0, 0, 0, 2 * 20, 2 * 20, 0]
    assert lora_param_table(4, 16, 2, [], 10)[0].trainable == 0
    with pytest.raises(ValueError, match="unknown target"):
        lora_param_table(4, 16, 2, ["embedding"], 10)
    with pytest.raises(ValueError, match="vocab"):
        lora_param_table(4, 16, 2, ["q"], 0)
