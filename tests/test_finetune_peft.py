"""PEFT as the oracle for LoRA on the real transformer: the same training, step for step, and our many-module
adapter files loading into PeftModel with every key matched and the same predictions."""
from __future__ import annotations

import copy
import io
import json
import warnings
import zipfile

import pytest
import torch

# PEFT is a dev requirement and this file's oracle: a missing PEFT fails here, it never turns the file into skips
from peft import PeftModel
from peft_training import tiny_peft_losses, tiny_peft_model
from safetensors.torch import load_file

from lora_core.adapter import CONFIG_NAME, WEIGHTS_NAME, adapters_zip_bytes, export_peft_adapters
from lora_core.finetune import (
    FinetuneSettings,
    finetune,
    initial_adapters,
    module_names,
    predict,
)
from lora_core.tiny import TinyConfig, held_out_set, load_base_model, model_digest
from lora_core.variants import layer_args, variant_start
from tolerances import assert_close, assert_each_close, rel_tol, ulps_apart

CFG = TinyConfig()


@pytest.fixture(scope="module")
def held():
    return held_out_set(CFG, 300)


@pytest.fixture(scope="module")
def bases():
    return {torch.float64: load_base_model(dtype=torch.float64), torch.float32: load_base_model()}


CASES = [
    # every attention type and the FFN in both layers, α/r
    (torch.float64, FinetuneSettings(task="reverse", targets=("q", "k", "v", "o", "ffn"), r=4, alpha=8.0,
                                     lr=1e-2, steps=55, seed=2)),
    # the FFN and V of layer 1 only, rsLoRA's α/√r
    (torch.float64, FinetuneSettings(task="permute", targets=("v", "ffn"), layers=(1,), r=2, alpha=4.0,
                                     rslora=True, lr=2e-2, steps=50, seed=5)),
    # float32: Q and V of layer 0, rsLoRA
    (torch.float32, FinetuneSettings(task="reverse", targets=("q", "v"), layers=(0,), r=8, alpha=16.0,
                                     rslora=True, lr=1e-2, steps=50, seed=1)),
]


def _factors(model, names):
    """PEFT's trained (A, B) per module, back in our orientation."""
    layers = {name: model.base_model.model.get_submodule(name) for name in names}
    return {name: (layer.lora_A["default"].weight.detach().T, layer.lora_B["default"].weight.detach().T)
            for name, layer in layers.items()}


@pytest.mark.parametrize("dtype, s", CASES, ids=["f64-all+ffn", "f64-layer1-v+ffn-rslora", "f32-layer0-qv-rslora"])
def test_losses_match_peft_step_for_step(bases, held, dtype, s):
    base = bases[dtype]
    digest = model_digest(base)
    run = finetune(base, s, held_out=held)
    oracle, model = tiny_peft_losses(base, s, dtype)
    theirs = _factors(model, run.adapters)
    # PEFT sums in another order (x·Aᵀ through nn.Linear), so a few ulps differ at every step and the run carries
    # them on; how far it spreads one ulp is measured, by PEFT itself started from A one ulp higher
    nudged, nudged_model = tiny_peft_losses(base, s, dtype, nudged=True)
    loss_growth = ulps_apart(nudged, oracle, dtype)
    nudged_theirs = _factors(nudged_model, run.adapters)
    factor_growth = max(ulps_apart(n, t) for name in theirs for n, t in zip(nudged_theirs[name], theirs[name]))
    assert len(run.losses) == len(oracle) == s.steps
    # each loss within ULPS·√steps ulps of its own size, times that growth (tests/tolerances.py says why)
    assert_each_close(run.losses, oracle, dtype, depth=s.steps, growth=loss_growth, what="losses")
    assert run.losses[-1] < run.losses[0] - 0.3
    assert model_digest(base) == digest
    # the trained factors agree too, each against its largest entry
    for name, (A, B) in run.adapters.items():
        assert_close(A, theirs[name][0], depth=s.steps, growth=factor_growth, what=f"{name} A")
        assert_close(B, theirs[name][1], depth=s.steps, growth=factor_growth, what=f"{name} B")


def test_a_dora_run_on_the_shipped_model_matches_peft_step_for_step(bases, held):
    """DoRA on the real transformer against ``LoraConfig(use_dora=True)`` trained by torch's AdamW: PEFT starts m at
    ‖W + s·A·B‖ itself (ours must be the same numbers), then 60 steps in float64 give the same losses (the issue's
    bound, 1e-10, and the ulp bound the LoRA cases use), A, B and m."""
    dtype, base = torch.float64, bases[torch.float64]
    s = FinetuneSettings(task="reverse", targets=("q", "v", "ffn"), r=4, alpha=8.0, lr=1e-2, steps=60, seed=4, variant="dora")
    run = finetune(base, s, held_out=held)
    # PEFT's own start for m: the column norms of W (B = 0), computed by PEFT
    fresh = tiny_peft_model(base, s, dtype)
    start = variant_start(base, "dora", module_names(base.cfg, s), initial_adapters(base.cfg, s, dtype), r=s.r,
                          scaling=s.scaling)
    ours = layer_args(start, start.params)[1]
    assert set(ours) == set(module_names(base.cfg, s))
    for name, m in ours.items():
        theirs = fresh.base_model.model.get_submodule(name).lora_magnitude_vector["default"].weight.detach()
        assert torch.equal(m.detach(), theirs), name
    oracle, model = tiny_peft_losses(base, s, dtype)
    nudged, _ = tiny_peft_losses(base, s, dtype, nudged=True)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == run.trainable
    assert len(run.losses) == len(oracle) == s.steps >= 50
    assert max(abs(a - b) for a, b in zip(run.losses, oracle)) <= 1e-10
    assert_each_close(run.losses, oracle, dtype, depth=s.steps, growth=ulps_apart(nudged, oracle, dtype), what="losses")
    assert run.losses[-1] < run.losses[0] - 0.3
    for name, (A, B) in run.adapters.items():
        layer = model.base_model.model.get_submodule(name)
        m = layer.lora_magnitude_vector["default"].weight.detach()
        for ours, theirs, what in ((A, layer.lora_A["default"].weight.detach().T, "A"),
                                   (B, layer.lora_B["default"].weight.detach().T, "B"), (run.magnitudes[name], m, "m")):
            assert float((ours - theirs).abs().max()) <= 1e-10 * max(1.0, float(theirs.abs().max())), (name, what)


# --- our adapter files in PEFT --------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(bases, held):
    s = FinetuneSettings(task="reverse", targets=("q", "v", "ffn"), layers=(0, 1), r=4, alpha=8.0, rslora=True,
                         lr=2e-2, steps=60, seed=3)
    return s, finetune(bases[torch.float32], s, held_out=held)


def _load_in_peft(base, folder):
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*missing adapter keys.*")
        warnings.filterwarnings("error", message=".*unexpected.*")
        model = PeftModel.from_pretrained(copy.deepcopy(base), str(folder))
    # from_pretrained hides the load result; loading the same folder as a second adapter shows it
    result = model.load_adapter(str(folder), adapter_name="again")
    assert result.missing_keys == [] and result.unexpected_keys == []
    model.delete_adapter("again")
    return model.eval()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exported_adapters_load_in_peft_and_predict_as_ours(bases, held, trained, tmp_path, dtype):
    s, run = trained
    base = bases[torch.float32]
    folder = export_peft_adapters(tmp_path / "adapter", run.adapters, r=s.r, alpha=s.alpha, rslora=s.rslora,
                                  dtype=dtype)
    config = json.loads((folder / CONFIG_NAME).read_text())
    assert sorted(config["target_modules"]) == sorted(module_names(CFG, s))
    assert (config["r"], config["lora_alpha"], config["use_rslora"]) == (s.r, s.alpha, s.rslora)
    stored = load_file(str(folder / WEIGHTS_NAME))
    assert set(stored) == {f"base_model.model.{n}.lora_{p}.weight" for n in run.adapters for p in "AB"}
    model = _load_in_peft(base, folder)
    for name, (A, B) in run.adapters.items():
        layer = model.base_model.model.get_submodule(name)
        assert torch.equal(layer.lora_A["default"].weight, A.to(dtype).float().T)
        assert torch.equal(layer.lora_B["default"].weight, B.to(dtype).float().T)
        assert layer.scaling["default"] == pytest.approx(run.scaling, rel=rel_tol(torch.float64))
    # only the named modules were adapted
    adapted = {n.removeprefix("base_model.model.") for n, m in model.named_modules() if hasattr(m, "lora_A")}
    assert adapted == set(run.adapters)
    with torch.no_grad():
        theirs = model(held).argmax(-1)
    ours = predict(base, run, held)
    assert torch.equal(theirs, ours)
    assert not torch.equal(ours, predict(base, None, held))  # the adapter changes what the model writes


def test_an_exported_dora_adapter_loads_in_peft_with_its_magnitudes_and_predicts_as_ours(bases, held, tmp_path):
    """``use_dora: true`` and each module's ``lora_magnitude_vector``: PeftModel.from_pretrained matches every key
    and writes the digits our DoRA model writes."""
    base = bases[torch.float32]
    s = FinetuneSettings(task="permute", targets=("q", "v", "o"), r=4, alpha=8.0, lr=2e-2, steps=60, seed=6, variant="dora")
    run = finetune(base, s, held_out=held)
    folder = export_peft_adapters(tmp_path / "dora", run.adapters, r=s.r, alpha=s.alpha, magnitudes=dict(run.magnitudes))
    assert json.loads((folder / CONFIG_NAME).read_text())["use_dora"] is True
    stored = load_file(str(folder / WEIGHTS_NAME))
    assert set(stored) == ({f"base_model.model.{n}.lora_{p}.weight" for n in run.adapters for p in "AB"}
                           | {f"base_model.model.{n}.lora_magnitude_vector" for n in run.adapters})
    model = _load_in_peft(base, folder)
    for name, m in run.magnitudes.items():
        assert torch.equal(model.base_model.model.get_submodule(name).lora_magnitude_vector["default"].weight, m)
    with torch.no_grad():
        theirs = model(held).argmax(-1)
    assert torch.equal(theirs, predict(base, run, held))
    plain = run._replace(magnitudes={})  # the same A and B without m: another model
    assert not torch.equal(predict(base, plain, held), theirs)
    first = next(iter(run.adapters))
    with pytest.raises(ValueError, match="a magnitude for every adapted module"):
        adapters_zip_bytes(run.adapters, r=s.r, alpha=s.alpha, magnitudes={first: run.magnitudes[first]})


def test_zip_holds_the_folder_files_and_is_deterministic(trained, tmp_path):
    s, run = trained
    kw = dict(r=s.r, alpha=s.alpha, rslora=s.rslora)
    folder = export_peft_adapters(tmp_path / "a", run.adapters, **kw)
    blob = adapters_zip_bytes(run.adapters, **kw)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert sorted(zf.namelist()) == sorted([CONFIG_NAME, WEIGHTS_NAME])
        for name in zf.namelist():
            assert zf.read(name) == (folder / name).read_bytes()
    backwards = dict(reversed(list(run.adapters.items())))
    assert adapters_zip_bytes(backwards, **kw) == blob == adapters_zip_bytes(run.adapters, **kw)
    assert adapters_zip_bytes(run.adapters, **{**kw, "alpha": 4.0}) != blob


def test_zip_unpacked_loads_in_peft(bases, held, trained, tmp_path):
    s, run = trained
    with zipfile.ZipFile(io.BytesIO(adapters_zip_bytes(run.adapters, r=s.r, alpha=s.alpha, rslora=s.rslora))) as zf:
        zf.extractall(tmp_path / "z")
    model = _load_in_peft(bases[torch.float32], tmp_path / "z")
    with torch.no_grad():
        assert torch.equal(model(held).argmax(-1), predict(bases[torch.float32], run, held))


def _pair(d_in=32, d_out=32, r=2):
    return torch.zeros(d_in, r), torch.zeros(r, d_out)


@pytest.mark.parametrize("adapters, kw, message", [
    ({}, {}, r"adapters must be a non-empty dict"),
    ([("layers.0.q_proj", _pair())], {}, r"adapters must be a non-empty dict"),
    ({"layers.0/../q_proj": _pair()}, {}, r"module names must be paths such as 'layers\.0\.q_proj'"),
    ({"layers.0.q_proj": _pair(), "": _pair()}, {}, r"module names must be paths"),
    ({"layers.0.q_proj": _pair(r=3)}, {}, r"layers\.0\.q_proj: A is 32×3 and B is 3×32; with r=2"),
    ({"layers.0.q_proj": (torch.zeros(32, 2), torch.zeros(3, 32))}, {}, r"layers\.0\.q_proj: A is 32×2 and B is 3×32"),
    ({"layers.0.q_proj": (torch.zeros(32, 2),)}, {}, r"layers\.0\.q_proj: expected an \(A, B\) pair"),
    ({"layers.0.q_proj": (torch.zeros(32), torch.zeros(2, 32))}, {}, r"layers\.0\.q_proj: A must be a 2-D"),
    ({"layers.0.q_proj": _pair()}, {"alpha": float("nan")}, r"lora_alpha must be a finite number"),
    ({"layers.0.q_proj": _pair()}, {"r": 0}, r"rank r must be a positive integer"),
    ({"layers.0.q_proj": _pair()}, {"rslora": 1}, r"rslora must be True or False"),
    ({"layers.0.q_proj": _pair()}, {"dtype": torch.int32}, r"dtype must be a floating-point"),
    ({"layers.0.q_proj": (torch.full((32, 2), 1e6), torch.zeros(2, 32))}, {"dtype": torch.float16},
     r"layers\.0\.q_proj\.lora_A\.weight has non-finite values"),
])
def test_export_refuses_bad_input(tmp_path, adapters, kw, message):
    kw = {"r": 2, "alpha": 4.0, **kw}
    with pytest.raises(ValueError, match=message):
        adapters_zip_bytes(adapters, **kw)
    with pytest.raises(ValueError, match=message):
        export_peft_adapters(tmp_path / "x", adapters, **kw)
    assert not (tmp_path / "x").exists()
