"""The real transformer (lora_core.tiny): the shipped model sorts, its attention is the Attention page's maths,
its LoRA forward is the merged-weight model, and a damaged model file is refused by name."""
from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from lora_core import tiny
from lora_core.attention import attention_forward
from lora_core.tiny import (
    BASE_CONFIG,
    BASE_WEIGHTS,
    PERMUTATION,
    ModelFileError,
    TinyConfig,
    held_out_set,
    layer_attention,
    load_base_model,
    model_digest,
    task_targets,
    token_accuracy,
    train_batch,
)
from tolerances import assert_close, attention_sizes, nudge, rel_tol, ulps_apart

CFG = TinyConfig()


@pytest.fixture(scope="module")
def base32():
    return load_base_model()


@pytest.fixture(scope="module")
def base64():
    return load_base_model(dtype=torch.float64)


def _is_held_out(seq) -> bool:
    # the rule written out on Python integers: Σ tᵢ·31ⁱ mod 1 000 003, then mod 10 == 0
    p = 1_000_003
    return sum(int(t) * pow(31, i, p) for i, t in enumerate(seq)) % p % 10 == 0


# --- the shipped model ---------------------------------------------------------------------------

def test_shipped_model_sorts_held_out_sequences(base32):
    held = held_out_set(CFG, 2000)
    assert held.shape == (2000, CFG.seq_len) and len({tuple(s) for s in held.tolist()}) > 1900
    with torch.no_grad():
        pred = base32(held).argmax(-1)
    acc = float((pred == held.sort(-1).values).double().mean())  # independent of task_targets
    assert acc >= 0.99
    assert token_accuracy(base32, held, "sort") == pytest.approx(acc, abs=0)


def test_shipped_config_matches_the_code():
    cfg, record = tiny.read_config()
    assert cfg == CFG
    assert record["held_out_sequences"] >= 1000


def test_held_out_set_follows_the_rule():
    held = held_out_set(CFG, 1000)
    assert all(_is_held_out(s) for s in held.tolist())
    assert torch.equal(held, held_out_set(CFG, 1000))  # fixed


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), size=st.integers(1, 300))
def test_train_batches_never_hold_a_held_out_sequence(seed, size):
    batch = train_batch(CFG, torch.Generator().manual_seed(seed), size)
    assert batch.shape == (size, CFG.seq_len) and batch.dtype == torch.int64
    assert int(batch.min()) >= 0 and int(batch.max()) < CFG.vocab
    assert not any(_is_held_out(s) for s in batch.tolist())


def test_train_batches_miss_the_fixed_held_out_set():
    held = {tuple(s) for s in held_out_set(CFG, 1000).tolist()}
    g = torch.Generator().manual_seed(0)
    seen = {tuple(s) for _ in range(20) for s in train_batch(CFG, g, 512).tolist()}
    assert not held & seen


# --- tasks (hypothesis against plain Python) ---------------------------------------------------

digits = st.lists(st.lists(st.integers(0, 9), min_size=8, max_size=8), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(rows=digits)
def test_task_targets_against_python(rows):
    x = torch.tensor(rows)
    for task, oracle in (("sort", sorted), ("reverse", lambda r: r[::-1]),
                         ("permute", lambda r: [PERMUTATION[d] for d in sorted(r)])):
        y = task_targets(task, x)
        assert y.shape == x.shape and y.dtype == x.dtype
        assert y.tolist() == [oracle(r) for r in rows], task
    # reverse is its own inverse; sort is idempotent; permute is sort then a bijection of digits
    assert torch.equal(task_targets("reverse", task_targets("reverse", x)), x)
    assert torch.equal(task_targets("sort", task_targets("sort", x)), task_targets("sort", x))
    assert sorted(PERMUTATION) == list(range(10))


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match="unknown task 'add'"):
        task_targets("add", torch.zeros(1, 8, dtype=torch.int64))


# --- attention: the model's is attention_forward's, and scaled_dot_product_attention's ---------

def _attention_inputs(model, tokens):
    """Each layer's normed input h (n×d) and its o_proj output, caught by hooks on a real forward."""
    normed, outs, hooks = {}, {}, []
    for i, block in enumerate(model.layers):
        hooks.append(block.attn_norm.register_forward_hook(lambda m, a, o, i=i: normed.__setitem__(i, o[0])))
        hooks.append(block.o_proj.register_forward_hook(lambda m, a, o, i=i: outs.__setitem__(i, o[0])))
    with torch.no_grad():
        model(tokens.unsqueeze(0))
    for h in hooks:
        h.remove()
    return normed, outs


def test_attention_is_attention_forward_and_sdpa(base64):
    model, cfg = base64, base64.cfg
    tokens = held_out_set(cfg, 3)[2]
    normed, outs = _attention_inputs(model, tokens)
    kept = layer_attention(model, tokens)
    assert len(kept) == cfg.layers
    n, dh = cfg.seq_len, cfg.d_head

    def split(t):
        return t.reshape(n, cfg.heads, dh).transpose(0, 1)

    for i in range(cfg.layers):
        W = {m: model.weight(f"layers.{i}.{m}_proj").detach() for m in "qkvo"}
        trace = attention_forward(normed[i], W["q"], W["k"], W["v"], W["o"], heads=cfg.heads)
        # each result against the size it was summed from (tests/tolerances.py, attention_sizes)
        size = attention_sizes(normed[i], W, {}, cfg.heads, 1.0)
        assert_close(kept[i], trace.weights, depth=size["depth"], scale=size["weights"])
        assert_close(outs[i], trace.out, depth=size["depth"], scale=size["out"])
        # independent path: heads split by hand, torch's fused attention and an einsum softmax
        q, k, v = (normed[i] @ W[m] for m in "qkv")
        ctx = F.scaled_dot_product_attention(split(q), split(k), split(v))
        assert_close(trace.context, ctx.transpose(0, 1).reshape(n, -1), depth=size["depth"], scale=size["context"])
        probs = torch.softmax(torch.einsum("hid,hjd->hij", split(q), split(k)) / math.sqrt(dh), -1)
        assert_close(kept[i], probs, depth=size["depth"], scale=size["weights"])
        assert_close(kept[i].sum(-1), torch.ones(cfg.heads, n, dtype=torch.float64), depth=n)  # n weights of at most 1


def test_attention_with_lora_on_q_is_attention_forward(base64):
    model, cfg = base64, base64.cfg
    tokens = held_out_set(cfg, 1)[0]
    g = torch.Generator().manual_seed(3)
    A = torch.randn(cfg.d_model, 3, generator=g, dtype=torch.float64)
    B = torch.randn(3, cfg.d_model, generator=g, dtype=torch.float64)
    normed, _ = _attention_inputs(model, tokens)  # layer 0's input does not depend on LoRA in layer 0
    kept = layer_attention(model, tokens, {"layers.0.q_proj": (A, B)}, 0.5)
    W = {m: model.weight(f"layers.0.{m}_proj").detach() for m in "qkvo"}
    trace = attention_forward(normed[0], W["q"], W["k"], W["v"], W["o"], heads=cfg.heads,
                              lora={"q": (A, B)}, scaling=0.5)
    size = attention_sizes(normed[0], W, {"q": (A, B)}, cfg.heads, 0.5)
    assert_close(kept[0], trace.weights, depth=size["depth"], scale=size["weights"])
    # and LoRA moved the weights by more than rounding could
    plain = layer_attention(model, tokens)[0]
    assert float((kept[0] - plain).abs().max()) > rel_tol(torch.float64, size["depth"]) * size["weights"]


# --- LoRA in the forward pass ------------------------------------------------------------------

def _random_pairs(cfg, names, r, seed, dtype=torch.float64, zero_b=False):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name in names:
        d_in, d_out = cfg.module_shape(name.rsplit(".", 1)[1])
        A = torch.randn(d_in, r, generator=g, dtype=dtype) * 0.3
        B = torch.zeros(r, d_out, dtype=dtype) if zero_b else torch.randn(r, d_out, generator=g, dtype=dtype) * 0.3
        out[name] = (A, B)
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lora_with_b_zero_is_the_base_exactly(base32, base64, dtype):
    model = base32 if dtype == torch.float32 else base64
    x = held_out_set(CFG, 64)
    pairs = _random_pairs(CFG, CFG.module_names(), 4, seed=1, dtype=dtype, zero_b=True)
    with torch.no_grad():
        assert torch.equal(model(x, pairs, 2.0), model(x))


def test_lora_forward_is_the_merged_model(base64):
    names = ["layers.0.q_proj", "layers.0.v_proj", "layers.1.o_proj", "layers.1.up_proj", "layers.0.down_proj"]
    pairs, s = _random_pairs(CFG, names, 3, seed=2), 0.75
    merged = copy.deepcopy(base64)
    with torch.no_grad():
        for name, (A, B) in pairs.items():
            merged.get_submodule(name).weight += s * (A @ B).T  # weight is W ᵀ (d_out×d_in)
        x = held_out_set(CFG, 128)
        ours, oracle, plain = base64(x, pairs, s), merged(x), base64(x)
        # how much the forward magnifies one ulp of its weights (layer norms, softmax): measured, every weight of
        # the merged model one ulp higher
        for p in merged.parameters():
            p.copy_(nudge(p))
        growth = ulps_apart(merged(x), oracle)
    # the sums in a row through each block: 2 layer norms (2·d each), q/k/v and o (d + r), scores (d_head),
    # softmax and context (seq_len each), up (d + r) and down (d_ff + r); then the final norm and the head
    depth = CFG.layers * (7 * CFG.d_model + CFG.d_head + 2 * CFG.seq_len + CFG.d_ff + 4 * 3) + 3 * CFG.d_model
    assert_close(ours, oracle, depth=depth, growth=growth)
    assert (ours - plain).abs().max() > 1e-2  # the adapters do change the output


def test_lora_forward_leaves_the_model_alone_and_refuses_unknown_names(base64):
    before = model_digest(base64)
    pairs = _random_pairs(CFG, CFG.module_names(), 2, seed=4)
    with torch.no_grad():
        base64(held_out_set(CFG, 8), pairs, 1.0)
    assert model_digest(base64) == before
    with pytest.raises(ValueError, match="no linear layer named 'layers.5.q_proj'"):
        base64(held_out_set(CFG, 1), {"layers.5.q_proj": pairs["layers.0.q_proj"]})


def test_model_digest_sees_every_weight(base32):
    twin = copy.deepcopy(base32)
    assert model_digest(twin) == model_digest(base32)
    with torch.no_grad():
        twin.layers[1].down_proj.weight[3, 5] += 1e-6
    assert model_digest(twin) != model_digest(base32)


# --- damaged model files -----------------------------------------------------------------------

def _state():
    return load_file(str(BASE_WEIGHTS))


def _config():
    return json.loads(BASE_CONFIG.read_text())


def _write(tmp_path, state=None, config=None, raw_weights=None, raw_config=None):
    w, c = tmp_path / "w.safetensors", tmp_path / "c.json"
    if raw_weights is not None:
        w.write_bytes(raw_weights)
    else:
        save_file(state if state is not None else _state(), str(w))
    c.write_text(raw_config if raw_config is not None else json.dumps(config if config is not None else _config()))
    return w, c


def test_copies_of_the_shipped_files_load(tmp_path, base32):
    assert model_digest(load_base_model(*_write(tmp_path))) == model_digest(base32)


def _weights_case(name):
    s = _state()
    if name == "shape":
        s["layers.0.q_proj.weight"] = torch.zeros(32, 31)
        return s, r"layers\.0\.q_proj\.weight is 32×31 .* needs 32×32"
    if name == "missing":
        del s["layers.1.up_proj.weight"]
        return s, r"lacks the tensor layers\.1\.up_proj\.weight"
    if name == "extra":
        s["layers.0.gate_proj.weight"] = torch.zeros(64, 32)
        return s, r"holds a tensor layers\.0\.gate_proj\.weight that the config's model does not have"
    if name in ("nan", "inf"):
        s["norm.weight"] = s["norm.weight"].clone()
        s["norm.weight"][3] = float(name)
        return s, r"norm\.weight .* not a finite number"
    if name == "integer":
        s["lm_head.weight"] = s["lm_head.weight"].to(torch.int32)
        return s, r"lm_head\.weight .* not a finite number"
    raise AssertionError(name)


@pytest.mark.parametrize("case", ["shape", "missing", "extra", "nan", "inf", "integer"])
def test_bad_tensors_are_refused_by_name(tmp_path, case):
    state, message = _weights_case(case)
    with pytest.raises(ModelFileError, match=message):
        load_base_model(*_write(tmp_path, state=state))


@pytest.mark.parametrize("raw", ["truncated", "garbage", "empty"])
def test_unreadable_weights_are_refused(tmp_path, raw):
    whole = BASE_WEIGHTS.read_bytes()
    blob = {"truncated": whole[: len(whole) // 2], "garbage": b"\x07" * 4096, "empty": b""}[raw]
    with pytest.raises(ModelFileError, match="cannot read the model weights w.safetensors"):
        load_base_model(*_write(tmp_path, raw_weights=blob))


def _config_case(name):
    c = _config()
    arch = c["architecture"]
    if name == "wrong type":
        arch["d_model"] = "32"
        return c, r"d_model = '32' is not a whole number"
    if name == "bool":
        arch["heads"] = True
        return c, r"heads = True is not a whole number"
    if name == "zero":
        arch["layers"] = 0
        return c, r"layers = 0 is not a whole number in 1…4096"
    if name == "missing":
        del arch["d_ff"]
        return c, r"architecture lacks d_ff"
    if name == "unknown":
        arch["dropout"] = 0
        return c, r"architecture fields dropout are unknown"
    if name == "indivisible":
        arch["heads"] = 3
        return c, r"d_model = 32 is not divisible by 3 heads"
    if name == "task":
        arch["base_task"] = "add"
        return c, r"base task 'add' is not one of"
    if name == "bigger model":  # a valid config the shipped weights do not fit
        arch["layers"] = 3
        return c, r"lacks the tensor layers\.2\."
    if name == "wider model":
        arch["d_ff"] = 128
        return c, r"layers\.0\.up_proj\.weight is 64×32 .* needs 128×32"
    if name == "no architecture":
        del c["architecture"]
        return c, r'no "architecture" object'
    raise AssertionError(name)


@pytest.mark.parametrize("case", ["wrong type", "bool", "zero", "missing", "unknown", "indivisible", "task",
                                  "bigger model", "wider model", "no architecture"])
def test_bad_configs_are_refused_by_name(tmp_path, case):
    config, message = _config_case(case)
    with pytest.raises(ModelFileError, match=message):
        load_base_model(*_write(tmp_path, config=config))


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", ""])
def test_non_json_configs_are_refused(tmp_path, raw):
    with pytest.raises(ModelFileError, match=r"c\.json"):
        load_base_model(*_write(tmp_path, raw_config=raw))


def test_missing_files_are_refused(tmp_path):
    with pytest.raises(ModelFileError, match="cannot read the model config nope.json"):
        load_base_model(BASE_WEIGHTS, tmp_path / "nope.json")
    with pytest.raises(ModelFileError, match="cannot read the model weights nope.safetensors"):
        load_base_model(tmp_path / "nope.safetensors", BASE_CONFIG)


def test_loaded_model_is_frozen_and_in_eval_mode(base32):
    assert not base32.training
    assert not any(p.requires_grad for p in base32.parameters())
    assert base32.embed.weight.dtype == torch.float32


def test_a_dora_layer_is_the_cores_dora_forward_and_a_magnitude_needs_its_pair():
    """One adapted layer, checked against lora_core.dora (itself checked against PEFT): layer 0's query is X·W′ with
    W′ = m ⊙ (W + s·A·B)/‖W + s·A·B‖, X being what q_proj reads; a magnitude without a LoRA pair is refused by name."""
    import pytest

    from lora_core import tiny as tiny_module
    from lora_core.dora import dora_forward
    model = tiny_module.load_base_model(dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    A, B = torch.randn(32, 4, generator=g, dtype=torch.float64), torch.randn(4, 32, generator=g, dtype=torch.float64)
    m = torch.rand(32, generator=g, dtype=torch.float64) + 0.5
    tokens = torch.randint(0, 10, (2, 8), generator=g)
    seen = {}
    hook = model.layers[0].q_proj.register_forward_hook(lambda mod, inp, out: seen.setdefault("x", inp[0]))
    model(tokens)  # layer 0's q_proj reads the same X with or without an adapter on it
    hook.remove()
    x = seen["x"]
    expected = dora_forward(x.reshape(-1, 32), model.weight("layers.0.q_proj"), A, B, m, 0.5).q.reshape(x.shape)
    attend, queries = tiny_module.attend, []
    tiny_module.attend = lambda q, k, v, heads: (queries.append(q), attend(q, k, v, heads))[1]
    try:
        model(tokens, {"layers.0.q_proj": (A, B)}, 0.5, magnitudes={"layers.0.q_proj": m})
    finally:
        tiny_module.attend = attend
    # the same products summed in another order: each entry sums d_in + r = 36 products, and the two orders may each
    # round every partial sum, so 2·36 ulps of the largest entry bound the difference
    eps = torch.finfo(torch.float64).eps
    torch.testing.assert_close(queries[0], expected, rtol=0, atol=2 * 36 * eps * float(expected.abs().max()))
    with pytest.raises(ValueError, match="has a DoRA magnitude but no LoRA pair"):
        model(tokens, {}, magnitudes={"layers.0.q_proj": m})
