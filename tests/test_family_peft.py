"""PEFT as the oracle for DoRA, PiSSA, LoRA+ and VeRA on one matrix, in the seed's notation.

PEFT stores the transposes: base_layer.weight = Wᵀ, lora_A.weight = Aᵀ, lora_B.weight = Bᵀ, the DoRA magnitude
lora_magnitude_vector["default"].weight = m, VeRA's vera_A = A_vᵀ and vera_B = B_vᵀ.
"""
from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

# PEFT is a dev requirement and this file's oracle: a missing PEFT fails here, it never turns the file into skips
from peft import LoraConfig, VeraConfig, get_peft_model
from peft.optimizers import create_loraplus_optimizer
from peft_training import peft_adamw_losses
from torch import nn

from lora_core.dora import column_norms, dora_forward
from lora_core.family import FamilySettings, family_run, start, variant_size
from lora_core.lora import init_random, lora_forward, seed_example
from lora_core.loraplus import RATIO, loraplus_param_groups
from lora_core.pissa import pissa_init
from lora_core.training import make_target, mse_loss
from lora_core.vera import vera_forward, vera_projections, vera_vectors
from tolerances import product_size, rel_tol


class One(nn.Module):
    """One linear map y = x·W (no bias), which PEFT adapts under the name "proj"."""

    def __init__(self, W: torch.Tensor):
        super().__init__()
        self.proj = nn.Linear(W.shape[0], W.shape[1], bias=False, dtype=W.dtype)
        with torch.no_grad():
            self.proj.weight.copy_(W.T)

    def forward(self, x):
        return self.proj(x)


def _peft_dora(W, A, B, m, alpha):
    model = get_peft_model(One(W), LoraConfig(r=A.shape[1], lora_alpha=alpha, target_modules=["proj"], use_dora=True,
                                              init_lora_weights=False, lora_dropout=0.0))
    layer = model.base_model.model.proj
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(A.T)
        layer.lora_B["default"].weight.copy_(B.T)
        layer.lora_magnitude_vector["default"].weight.copy_(m)
    return model, layer


def _case(d=7, k=5, r=3, n=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=dtype)
    W = torch.randn(d, k, generator=g, dtype=dtype)
    A, B = init_random(d, k, r, generator=g, dtype=dtype)
    return X, W, A, B


# --- DoRA ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", [dict(), dict(d=16, k=9, r=4, seed=3), "seed"])
def test_dora_forward_and_gradients_match_peft(case):
    if case == "seed":
        X, W, A, B = seed_example()
    else:
        X, W, A, B = _case(**case)
    alpha = 2.0 * A.shape[1]
    s = alpha / A.shape[1]
    m = column_norms(W, A, B, s) * torch.linspace(0.8, 1.2, W.shape[1], dtype=W.dtype)  # not at its start
    T = torch.zeros(X.shape[0], W.shape[1], dtype=W.dtype)
    model, layer = _peft_dora(W, A, B, m, alpha)
    assert layer.scaling["default"] == s
    ours_leaves = [t.clone().requires_grad_(True) for t in (A, B, m)]
    ours = dora_forward(X, W, *ours_leaves[:2], ours_leaves[2], s)
    theirs = model(X)
    # two orders of the same sums: ulps of the size of |X|·(|W| + s|A||B|), times the ratio m/‖·‖
    size = product_size(X, W.abs() + s * A.abs() @ B.abs()) * float((m / ours.norm).abs().max())
    assert float((ours.q - theirs).abs().max()) <= 1e-12 * size
    mse_loss(ours.q, T).backward()
    mse_loss(theirs, T).backward()
    for mine, peft_grad in zip(ours_leaves, (layer.lora_A["default"].weight.grad.T,
                                              layer.lora_B["default"].weight.grad.T,
                                              layer.lora_magnitude_vector["default"].weight.grad)):
        assert float((mine.grad - peft_grad).abs().max()) <= 1e-10 * float(peft_grad.abs().max())


def test_dora_holds_the_norm_constant_for_the_gradient():
    """With the norm detached the gradient of m is Σ_rows G ⊙ X·V/‖V‖; through the norm it would differ."""
    X, W, A, B = _case()
    m = column_norms(W, A, B).clone().requires_grad_(True)
    A_, B_ = A.clone().requires_grad_(True), B.clone().requires_grad_(True)
    out = dora_forward(X, W, A_, B_, m)
    out.q.sum().backward()
    V = W + A @ B
    assert torch.allclose(m.grad, (X @ V).sum(0) / torch.linalg.vector_norm(V, dim=0), rtol=1e-13, atol=0)
    # the full derivative, through the norm too, is not what DoRA (and PEFT) use
    A2 = A.clone().requires_grad_(True)
    V2 = W + A2 @ B
    q2 = m.detach() * (X @ V2) / torch.linalg.vector_norm(V2, dim=0)
    q2.sum().backward()
    assert not torch.allclose(A_.grad, A2.grad, rtol=1e-6)


def test_fifty_dora_steps_match_peft_trained_with_torch_adamw():
    X, W, _, _ = _case(d=8, k=6, n=5)
    T = make_target(X, W, r_star=2, seed=1).T
    s = FamilySettings(r=3, alpha=6.0, lr=1e-2, steps=50, seed=2)
    ours = family_run("dora", X, W, T, s)
    params, _ = start("dora", W, s)
    model, layer = _peft_dora(W, params["A"], params["B"], params["m"], s.alpha)
    losses, trained = peft_adamw_losses(model, X, T, s)
    assert len(trained) == 3 and sum(p.numel() for p in trained) == ours.trained == 3 * (8 + 6) + 6
    worst = max(abs(a - b) / b for a, b in zip(ours.losses, losses))
    assert worst <= 1e-10, worst
    assert float((ours.params["m"] - layer.lora_magnitude_vector["default"].weight).abs().max()) <= 1e-10


@settings(max_examples=60, deadline=None)
@given(d=st.integers(1, 9), k=st.integers(1, 9), r=st.integers(1, 4), n=st.integers(1, 5), seed=st.integers(0, 999),
       alpha=st.floats(0.25, 16))
def test_dora_with_m_at_the_norm_is_plain_lora(d, k, r, n, seed, alpha):
    X, W, A, B = _case(d, k, r, n, seed)
    s = alpha / r
    out = dora_forward(X, W, A, B, column_norms(W, A, B, s), s)
    plain = lora_forward(X, W, A, B, s).q
    size = product_size(X, W.abs() + s * A.abs() @ B.abs())
    # m/‖V‖ is 1 up to one division's rounding, so Q matches up to a few ulps of the product's size
    assert float((out.q - plain).abs().max()) <= rel_tol(torch.float64, d + r) * 4 * size


# --- PiSSA -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("d,k,r,alpha", [(5, 3, 2, 2.0), (16, 12, 4, 8.0), (12, 16, 3, 1.0)])
def test_pissa_matches_peft_in_float32(d, k, r, alpha):
    """PEFT initialises PiSSA only in float32, so the two agree to float32's rounding of an SVD: a few ulps of the
    largest entry per unit of the matrix's size, well inside 1e-5 of it."""
    W = seed_example().W if (d, k) == (5, 3) else _case(d, k)[1]
    W32 = W.float()
    model = get_peft_model(One(W32), LoraConfig(r=r, lora_alpha=alpha, target_modules=["proj"],
                                                init_lora_weights="pissa"))
    layer = model.base_model.model.proj
    s = layer.scaling["default"]
    ours = pissa_init(W.double(), r, s)
    # sign-free: the product s·A·B and the residual base (singular vectors may flip in pairs)
    theirs_delta = (s * layer.lora_B["default"].weight @ layer.lora_A["default"].weight).T.double()
    theirs_res = layer.base_layer.weight.T.double()
    limit = 1e-5 * float(W.abs().max())
    assert float((s * ours.A @ ours.B - theirs_delta).abs().max()) <= limit
    assert float((ours.W_res - theirs_res).abs().max()) <= limit


@settings(max_examples=60, deadline=None)
@given(d=st.integers(1, 12), k=st.integers(1, 12), seed=st.integers(0, 999), alpha=st.floats(0.25, 32),
       data=st.data())
def test_pissa_residual_plus_adapter_is_w(d, k, seed, alpha, data):
    r = data.draw(st.integers(1, min(d, k)))
    W = torch.randn(d, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    s = alpha / r
    init = pissa_init(W, r, s)
    assert float((init.W_res + s * init.A @ init.B - W).abs().max()) <= 1e-12 * max(1.0, float(W.abs().max()))
    # s·A·B is W's best rank-r approximation: what is left has exactly the remaining singular values
    assert torch.allclose(torch.linalg.svdvals(init.W_res)[: min(d, k) - r], init.sigma[r:],
                          rtol=0, atol=1e-12 * max(1.0, float(init.sigma[0])))


# --- LoRA+ -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ratio,wd", [(RATIO, 0.0), (4.0, 0.01)])
def test_loraplus_groups_are_peft_s(ratio, wd):
    X, W, A, B = _case()
    model = get_peft_model(One(W), LoraConfig(r=A.shape[1], lora_alpha=3.0, target_modules=["proj"]))
    kwargs = {} if wd == 0.0 else {"loraplus_weight_decay": wd}
    opt = create_loraplus_optimizer(model, torch.optim.AdamW, lr=2e-3, loraplus_lr_ratio=ratio, **kwargs)
    layer = model.base_model.model.proj
    theirs = {(id(p), g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    ours_groups = loraplus_param_groups(layer.lora_A["default"].weight, layer.lora_B["default"].weight, 2e-3, ratio,
                                        weight_decay=wd)
    ours = {(id(p), g["lr"], g["weight_decay"]) for g in ours_groups for p in g["params"]}
    assert ours == theirs
    assert {lr for _, lr, _ in ours} == {2e-3, 2e-3 * ratio}


# --- VeRA ------------------------------------------------------------------------------------------------------

def _peft_vera(W, r, key):
    config = VeraConfig(r=r, target_modules=["proj"], projection_prng_key=key, vera_dropout=0.0)
    return get_peft_model(One(W), config)


@pytest.mark.parametrize("d,k,r,key", [(5, 3, 2, 0), (16, 12, 8, 7), (12, 20, 32, 3)])
def test_vera_projections_vectors_forward_and_count_match_peft(d, k, r, key):
    X, W, _, _ = _case(d, k, dtype=torch.float32)
    model = _peft_vera(W, r, key)
    layer = model.base_model.model.proj
    A, B = vera_projections(d, k, r, key)
    assert torch.equal(A, layer.vera_A["default"][:, :d].T) and torch.equal(B, layer.vera_B["default"][:k, :].T)
    d0, b0 = vera_vectors(r, k, dtype=torch.float32)
    assert torch.equal(d0, layer.vera_lambda_d["default"]) and torch.equal(b0, layer.vera_lambda_b["default"])
    trained = [p for p in model.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trained) == r + k
    g = torch.Generator().manual_seed(key)
    d_vec, b_vec = torch.randn(r, generator=g), torch.randn(k, generator=g)
    with torch.no_grad():
        layer.vera_lambda_d["default"].copy_(d_vec)
        layer.vera_lambda_b["default"].copy_(b_vec)
        theirs = model(X)
    ours = vera_forward(X, W, A, B, d_vec, b_vec).q
    size = product_size(X, W.abs() + (A.abs() * d_vec.abs()) @ B.abs() * b_vec.abs())
    assert float((ours - theirs).abs().max()) <= rel_tol(torch.float32, d + r) * size


# --- counts and bytes ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("d,k,r", [(5, 3, 2), (64, 48, 8), (4096, 4096, 16)])
def test_each_variants_trained_count_is_peft_s(d, k, r):
    """variant_size's trained numbers against the parameters PEFT marks trainable (built on the meta device)."""
    configs = {"lora": LoraConfig(r=r, target_modules=["proj"]),
               "dora": LoraConfig(r=r, target_modules=["proj"], use_dora=True),
               "vera": VeraConfig(r=r, target_modules=["proj"])}
    for variant, config in configs.items():
        with torch.device("meta") if d > 1000 and variant != "dora" else torch.device("cpu"):
            model = get_peft_model(One(torch.zeros(d, k)), config)
        theirs = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert variant_size(variant, d, k, r).trained == theirs, variant
    for same in ("qlora", "pissa", "loraplus"):
        assert variant_size(same, d, k, r).trained == r * (d + k)
    lora, qlora = variant_size("lora", d, k, r), variant_size("qlora", d, k, r)
    assert lora.base_bytes == d * k * 2 and qlora.base_bytes == d * k * 4.5 / 8
    assert lora.adapter_bytes == r * (d + k) * 4
    assert variant_size("vera", d, k, r).adapter_bytes == (r + k + r * (d + k)) * 4
    assert variant_size("vera", d, k, r, save_projection=False).adapter_bytes == (r + k) * 4


# --- a DoRA adapter people bring: PEFT's own file through the upload reader ---------------------------------

def peft_dora_zip(d: int, k: int, r: int, alpha: float, seed: int) -> tuple[bytes, torch.nn.Module]:
    """What PEFT's save_pretrained writes for a DoRA layer on nn.Linear(d, k) holding a seeded Wᵀ, zipped flat."""
    import io
    import tempfile
    import zipfile
    from pathlib import Path
    g = torch.Generator().manual_seed(seed)
    base = torch.nn.Sequential()
    base.add_module("q_proj", torch.nn.Linear(d, k, bias=False))
    with torch.no_grad():
        base.q_proj.weight.copy_(torch.randn(k, d, generator=g))
    model = get_peft_model(base, LoraConfig(target_modules=["q_proj"], r=r, lora_alpha=alpha, use_dora=True))
    layer = model.base_model.model.q_proj
    with torch.no_grad():  # trained-looking factors and magnitudes, so that every number is PEFT's own and non-trivial
        layer.lora_B["default"].weight.copy_(torch.randn(k, r, generator=g) * 0.1)
        layer.lora_magnitude_vector["default"].weight.mul_(1 + 0.1 * torch.rand(k, generator=g))
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for f in Path(folder).iterdir():
                zf.write(f, f.name)
    return buf.getvalue(), layer


def test_a_dora_adapter_saved_by_peft_loads_with_its_magnitude():
    from lora_core.upload import load_peft_adapter_zip
    data, layer = peft_dora_zip(5, 3, 2, 4.0, seed=11)
    loaded = load_peft_adapter_zip(data, d=5, k=3)
    assert torch.equal(loaded.A, layer.lora_A["default"].weight.detach().double().T)
    assert torch.equal(loaded.B, layer.lora_B["default"].weight.detach().double().T)
    assert torch.equal(loaded.magnitude, layer.lora_magnitude_vector["default"].weight.detach().double())
    # and the layer it describes is PEFT's: dora_forward with the loaded numbers gives PEFT's output
    X = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    W = layer.base_layer.weight.detach().double().T
    ours = dora_forward(X.double(), W, loaded.A, loaded.B, loaded.magnitude, loaded.scaling).q
    theirs = layer(X).detach().double()
    # PEFT computes in float32: each output sums d + r = 7 rounded products and is scaled twice, so 2·(7 + 1) ulps of
    # float32 of the largest output bound it against the float64 result
    assert float((ours - theirs).abs().max()) <= 16 * torch.finfo(torch.float32).eps * float(theirs.abs().max())


@pytest.mark.parametrize("change, words", [
    ("drop m", "says use_dora=true but adapter_model.safetensors has no lora_magnitude_vector"),
    ("m without use_dora", "holds a DoRA lora_magnitude_vector, but adapter_config.json does not say use_dora=true"),
    ("m of the wrong length", "lora_magnitude_vector has shape 2, but this W_Q has 3 output columns"),
    ("m not finite", "lora_magnitude_vector[1] is nan, which is not a finite number"),
    ("use_dora not a boolean", "use_dora in adapter_config.json must be true or false"),
])
def test_a_dora_adapter_that_does_not_add_up_is_refused_by_name(change, words):
    import io
    import json
    import zipfile

    from safetensors.torch import load as load_st
    from safetensors.torch import save as save_st

    from lora_core.upload import load_peft_adapter_zip
    data, _ = peft_dora_zip(5, 3, 2, 4.0, seed=12)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    tensors, config = load_st(files["adapter_model.safetensors"]), json.loads(files["adapter_config.json"])
    key = "base_model.model.q_proj.lora_magnitude_vector"
    if change == "drop m":
        del tensors[key]
    elif change == "m without use_dora":
        config["use_dora"] = False
    elif change == "m of the wrong length":
        tensors[key] = tensors[key][:2].clone()
    elif change == "m not finite":
        tensors[key] = tensors[key].clone()
        tensors[key][1] = float("nan")
    else:
        config["use_dora"] = "yes"
    files["adapter_model.safetensors"], files["adapter_config.json"] = save_st(tensors), json.dumps(config).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, blob in files.items():
            zf.writestr(n, blob)
    with pytest.raises(ValueError, match=re.escape(words)):
        load_peft_adapter_zip(buf.getvalue(), d=5, k=3)
