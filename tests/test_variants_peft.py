"""PEFT and bitsandbytes as the oracles for the LoRA family on the shipped transformer (lora_core.variants):
QLoRA's NF4 base, PiSSA's start, LoRA+'s two rates and VeRA's vectors, each against the same run in PEFT."""
from __future__ import annotations

import copy
import warnings
from dataclasses import replace
from itertools import islice

import pytest
import torch

# bitsandbytes and PEFT are dev requirements and this file's oracles: missing, they fail here, never skip
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # bitsandbytes warns that its optional `kernels` package is absent
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnbf
from peft import LoraConfig, VeraConfig, get_peft_model
from peft.optimizers import create_loraplus_optimizer
from peft_training import tiny_peft_losses

from lora_core.finetune import FinetuneSettings, batches, finetune, loss_fn, module_names, predict, weight_updates
from lora_core.pissa import pissa_init
from lora_core.tiny import ATTENTION_MODULES, FFN_MODULES, TinyConfig, held_out_set, load_base_model, task_targets
from lora_core.variants import LORAPLUS_RATIO, NF4Linear, frozen_model, quantized_base, stored_bytes
from tolerances import assert_each_close, product_size, rel_tol, ulps_apart

CFG = TinyConfig()
BLOCK_LINEARS = (*ATTENTION_MODULES, *FFN_MODULES)


@pytest.fixture(scope="module")
def held():
    return held_out_set(CFG, 300)


@pytest.fixture(scope="module")
def bases():
    return {torch.float64: load_base_model(dtype=torch.float64), torch.float32: load_base_model()}


def _close_run(ours: list[float], oracle: list[float], nudged: list[float]) -> None:
    """float64, step for step: within 1e-10, and within the ulp bound of the run's measured spread."""
    assert len(ours) == len(oracle)
    assert max(abs(a - b) for a, b in zip(ours, oracle)) <= 1e-10
    assert_each_close(ours, oracle, torch.float64, depth=len(ours), growth=ulps_apart(nudged, oracle, torch.float64),
                      what="losses")


# --- QLoRA ---------------------------------------------------------------------------------------------------

def _bnb_dequantized(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """bitsandbytes' packed codes, absmax and dequantized weight for ``weight`` (out×in, as PEFT hands it over)."""
    packed, state = bnbf.quantize_4bit(weight.detach().float().contiguous(), blocksize=64, quant_type="nf4")
    return packed.reshape(-1), state.absmax, bnbf.dequantize_4bit(packed, state).reshape(weight.shape)


def test_the_qlora_base_stores_what_bitsandbytes_stores_and_nothing_of_full_precision(bases):
    """Every block's linear layer holds bitsandbytes' own bytes (two codes a byte, one float32 absmax per 64) and
    reads back as its dequantized weight, bit for bit; the embeddings, norms and lm_head stay as they were."""
    base = bases[torch.float32]
    q = quantized_base(base)
    expected = 0
    for i, block in enumerate(q.layers):
        for m in BLOCK_LINEARS:
            layer, original = getattr(block, m), getattr(base.layers[i], m)
            assert isinstance(layer, NF4Linear)
            packed, absmax, dequantized = _bnb_dequantized(original.weight)
            assert torch.equal(layer.packed, packed) and torch.equal(layer.absmax, absmax), (i, m)
            assert torch.equal(layer.weight, dequantized), (i, m)
            expected += packed.numel() + 4 * absmax.numel()
    kept = [p for n, p in base.named_parameters() if not any(f".{m}." in f"{n}" for m in BLOCK_LINEARS)]
    expected += sum(p.numel() * 4 for p in kept)
    assert stored_bytes(q) == expected
    assert all(torch.equal(a, b) for a, b in zip(kept, [p for n, p in q.named_parameters()]))
    # a quarter of a float32's 32 bits, plus the absmax: the block linears shrink from 4 bytes a weight to 0.5625
    linears = sum(base.get_submodule(n).weight.numel() for n in CFG.module_names())
    assert stored_bytes(base) - stored_bytes(q) == linears * 4 - linears * 4.5 / 8


def test_an_nf4_layer_is_bitsandbytes_linear4bit(bases):
    """Our NF4 layer's output against bitsandbytes' own Linear4bit holding the same weight, in float32: within the
    rounding of a product over d_in terms, against the size of |h|·|W̃|."""
    base = bases[torch.float32]
    g = torch.Generator().manual_seed(11)
    for m in BLOCK_LINEARS:
        original = base.layers[0].get_submodule(m)
        theirs = bnb.nn.Linear4bit(original.in_features, original.out_features, bias=False,
                                   compute_dtype=torch.float32, quant_type="nf4", compress_statistics=False)
        theirs.weight = bnb.nn.Params4bit(original.weight.detach().clone(), requires_grad=False, quant_type="nf4",
                                          compress_statistics=False, blocksize=64)
        theirs = theirs.to("cpu")
        h = torch.randn(16, original.in_features, generator=g)
        ours = NF4Linear(original.weight)
        with torch.no_grad():
            got, want = ours(h), theirs(h)
        bound = rel_tol(torch.float32, original.in_features) * product_size(h, ours.weight.T.abs())
        assert float((got - want).abs().max()) <= bound, m


def test_a_qlora_run_matches_peft_over_the_bitsandbytes_base_step_for_step(bases, held):
    """QLoRA in float64 on the shipped model: the base quantized by bitsandbytes, then PEFT's LoRA over it trained
    by torch's AdamW. 50 steps give the same losses within 1e-10 (and the ulp bound of the run's own spread); the
    gradient reaches A and B through our NF4 layer's own backward, which dequantizes again."""
    dtype, base = torch.float64, bases[torch.float64]
    s = FinetuneSettings(task="permute", targets=("q", "v", "ffn"), r=4, alpha=8.0, lr=1e-2, steps=50, seed=21,
                         variant="qlora")
    run = finetune(base, s, held_out=held)
    oracle_base = copy.deepcopy(base)
    with torch.no_grad():
        for block in oracle_base.layers:
            for m in BLOCK_LINEARS:
                layer = block.get_submodule(m)
                layer.weight.copy_(_bnb_dequantized(layer.weight)[2].to(dtype))
    oracle, model = tiny_peft_losses(base, s, dtype, frozen=oracle_base)
    nudged, _ = tiny_peft_losses(base, s, dtype, nudged=True, frozen=oracle_base)
    _close_run(list(run.losses), oracle, nudged)
    assert run.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert run.frozen_bytes == stored_bytes(quantized_base(base)) < stored_bytes(base) / 3
    # what it writes is what PEFT's model writes, and the update is s·A·B over W̃
    with torch.no_grad():
        assert torch.equal(predict(base, run, held), model(held).argmax(-1))
    frozen = quantized_base(base)
    for n, delta in weight_updates(base, run).items():
        A, B = run.adapters[n]
        sab = run.scaling * (A.double() @ B.double())
        # (W̃ + s·A·B) − W̃: two roundings of numbers the size of W̃ + s·A·B
        size = float((frozen.weight(n).double().abs() + sab.abs()).max())
        assert float((delta - sab).abs().max()) <= rel_tol(torch.float64, 2) * size, n


# --- PiSSA ---------------------------------------------------------------------------------------------------

def test_pissa_on_the_shipped_model_starts_where_peft_starts_and_changes_nothing_at_step_0(bases, held):
    """PEFT's ``init_lora_weights="pissa"`` (float32 SVD) on every adapted layer: the same s·A·B and the same
    residual base within 1e-5 of the largest entry of W (singular vectors may flip sign, so only products are
    compared); in float64 the residual plus the adapter is W to 1e-12, so the model writes what the base writes."""
    base = bases[torch.float32]
    s = FinetuneSettings(task="reverse", targets=("q", "k", "ffn"), r=4, alpha=8.0, variant="pissa")
    names = module_names(CFG, s)
    peft = get_peft_model(copy.deepcopy(base), LoraConfig(target_modules=list(names), r=s.r, lora_alpha=s.alpha,
                                                          init_lora_weights="pissa", lora_dropout=0.0))
    ours = frozen_model(base, "pissa", names, s.r, s.scaling)
    untouched = set(CFG.module_names()) - set(names)
    for n in names:
        layer = peft.base_model.model.get_submodule(n)
        W = base.weight(n).detach().double()
        theirs_delta = (s.scaling * layer.lora_B["default"].weight @ layer.lora_A["default"].weight).T.double()
        limit = 1e-5 * float(W.abs().max())
        assert float((ours.weight(n).double() - layer.base_layer.weight.T.double()).abs().max().detach()) <= limit, n
        assert float((W - ours.weight(n).detach().double() - theirs_delta.detach()).abs().max()) <= limit, n
    assert all(torch.equal(ours.weight(n), base.weight(n)) for n in untouched)
    b64 = bases[torch.float64]
    s64 = FinetuneSettings(task="reverse", targets=("q", "k", "ffn"), r=4, alpha=8.0, steps=1, lr=1e-12, seed=3,
                           variant="pissa")
    residual = frozen_model(b64, "pissa", names, s64.r, s64.scaling)
    starts = {n: (init.A, init.B) for n in names for init in [pissa_init(b64.weight(n).detach(), s64.r, s64.scaling)]}
    for n, (A, B) in starts.items():
        assert float((residual.weight(n) + s64.scaling * A @ B - b64.weight(n)).abs().max()) <= 1e-12, n
    # at its start (A₀, B₀ over the residual) the model writes what the base writes, and the run starts from there
    run = finetune(b64, s64, held_out=held)
    assert torch.equal(predict(b64, run._replace(adapters=starts), held), predict(b64, None, held))
    base_acc = float((predict(b64, None, held) == task_targets("reverse", held)).double().mean())
    assert run.accuracies[0] == base_acc


# --- LoRA+ ---------------------------------------------------------------------------------------------------

def test_a_loraplus_run_matches_peft_create_loraplus_optimizer_step_for_step(bases, held):
    """LoRA+ in float64 against PEFT's ``create_loraplus_optimizer`` (λ = 16, the weight decay of every run here,
    0.01) with torch's AdamW: the same losses within 1e-10 over 50 steps, so every B learned at 16 times A's rate."""
    dtype, base = torch.float64, bases[torch.float64]
    s = FinetuneSettings(task="reverse", targets=("q", "v"), r=4, alpha=8.0, lr=2e-3, steps=50, seed=8,
                         variant="loraplus")
    run = finetune(base, s, held_out=held)

    def optimizer(model, params):
        opt = create_loraplus_optimizer(model, torch.optim.AdamW, lr=s.lr, loraplus_lr_ratio=LORAPLUS_RATIO,
                                        loraplus_weight_decay=0.01, foreach=False)
        assert {g["lr"] for g in opt.param_groups if g["params"]} == {s.lr, s.lr * LORAPLUS_RATIO}
        return opt

    oracle, _ = tiny_peft_losses(base, s, dtype, optimizer=optimizer)
    nudged, _ = tiny_peft_losses(base, s, dtype, nudged=True, optimizer=optimizer)
    _close_run(list(run.losses), oracle, nudged)
    plain = finetune(base, replace(s, variant="lora"), held_out=held)
    assert abs(plain.losses[-1] - run.losses[-1]) > 1e-3  # the ratio changed the run


# --- VeRA ----------------------------------------------------------------------------------------------------

def _peft_vera_losses(base, s: FinetuneSettings, nudged: bool = False):
    names = list(module_names(CFG, s))
    model = get_peft_model(copy.deepcopy(base), VeraConfig(r=s.r, target_modules=names, projection_prng_key=0,
                                                           vera_dropout=0.0, d_initial=0.1))
    params = [p for p in model.parameters() if p.requires_grad]
    if nudged:
        with torch.no_grad():
            for n in names:
                d = model.base_model.model.get_submodule(n).vera_lambda_d["default"]
                d.copy_(torch.nextafter(d, torch.full_like(d, float("inf"))))
    opt = torch.optim.AdamW(params, lr=s.lr, weight_decay=0.01, foreach=False)
    losses = []
    for x in islice(batches(CFG, s), s.steps):
        loss = loss_fn(model(x), task_targets(s.task, x))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model, params


def test_a_vera_run_matches_peft_veraconfig_step_for_step(bases, held):
    """VeRA in float64 against ``VeraConfig`` (the same key, d = 0.1, b = 0): PEFT's shared projections are ours,
    each layer's block of them; it trains r + d_out numbers a layer, and 50 AdamW steps give the same losses."""
    base = bases[torch.float64]
    s = FinetuneSettings(task="permute", targets=("q", "v", "ffn"), r=8, lr=2e-2, steps=50, seed=5, variant="vera")
    run = finetune(base, s, held_out=held)
    oracle, model, params = _peft_vera_losses(base, s)
    nudged, _, _ = _peft_vera_losses(base, s, nudged=True)
    _close_run(list(run.losses), oracle, nudged)
    assert run.trainable == sum(p.numel() for p in params) == sum(
        s.r + CFG.module_shape(n.rsplit(".", 1)[1])[1] for n in module_names(CFG, s))
    for n, (d, b) in run.vectors.items():
        layer = model.base_model.model.get_submodule(n)
        assert float((d - layer.vera_lambda_d["default"].detach()).abs().max()) <= 1e-10 * max(1, float(d.abs().max()))
        assert float((b - layer.vera_lambda_b["default"].detach()).abs().max()) <= 1e-10 * max(1, float(b.abs().max()))
    with torch.no_grad():
        assert torch.equal(predict(base, run, held), model(held).argmax(-1))
