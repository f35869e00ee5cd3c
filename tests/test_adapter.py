"""PEFT adapter files: our export loads in real PEFT, PEFT's saves load in ours (bad zips: tests/test_upload.py)."""
import io
import json
import warnings
import zipfile

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from lora_core import lora_scaling, merge
from lora_core.adapter import CONFIG_NAME, WEIGHTS_NAME, adapter_zip_bytes, export_peft_adapter
from lora_core.upload import LoadedAdapter, load_peft_adapter_zip

D, K, R = 6, 5, 2
KEY_A, KEY_B = "base_model.model.q_proj.lora_A.weight", "base_model.model.q_proj.lora_B.weight"


class TinyBase(nn.Module):
    """The smallest model with a top-level ``q_proj``, holding Wᵀ as nn.Linear does."""

    def __init__(self, W: torch.Tensor | None = None, d: int = D, k: int = K):
        super().__init__()
        self.q_proj = nn.Linear(d, k, bias=False)
        if W is not None:
            with torch.no_grad():
                self.q_proj.weight.copy_(W.T)

    def forward(self, x):
        return self.q_proj(x)


def _factors(d, k, r, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    # rounded through float32, so a float32 file holds them exactly
    mk = lambda *s: torch.randn(*s, generator=g).to(dtype)
    return mk(d, k), mk(d, r), mk(r, k)


def _peft_from_pretrained(base: nn.Module, path):
    """Load with PEFT and insist that every LoRA key matched: no missing and no unexpected ones."""
    from peft import PeftModel
    with warnings.catch_warnings():
        # peft warns (and does not raise) on missing adapter keys
        warnings.filterwarnings("error", message=".*missing adapter keys.*")
        model = PeftModel.from_pretrained(base, str(path))
    # from_pretrained hides the load result; loading the same files again as a second adapter shows it
    result = model.load_adapter(str(path), adapter_name="again")
    assert result.missing_keys == [] and result.unexpected_keys == []
    model.delete_adapter("again")
    return model


def _unzip(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _zip(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, blob in files.items():
            zf.writestr(name, blob)
    return buf.getvalue()


def _zip_dir(path, folder: str = "") -> bytes:
    return _zip({folder + p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()})


def _peft_saved(tmp_path, r, alpha, rslora, seed=3):
    """A real PeftModel with non-zero A and B, saved by ``save_pretrained``."""
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(seed)
    model = get_peft_model(TinyBase(), LoraConfig(r=r, lora_alpha=alpha, target_modules=["q_proj"],
                                                  use_rslora=rslora, init_lora_weights=False))
    out = tmp_path / "peft_saved"
    model.save_pretrained(str(out))
    return model, out


# --- our export → real PEFT --------------------------------------------------------------

@pytest.mark.parametrize("r,alpha,rslora", [(1, 1.0, False), (2, 4.0, False), (3, 6.0, True), (4, 16, True),
                                            (5, 0.5, False)])
def test_export_loads_in_peft_and_reproduces_q(tmp_path, r, alpha, rslora):
    W, A, B = _factors(D, K, r, seed=r)
    X = torch.randn(4, D, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    path = export_peft_adapter(tmp_path / "ours", A, B, r=r, alpha=alpha, rslora=rslora)
    assert sorted(p.name for p in path.iterdir()) == sorted([CONFIG_NAME, WEIGHTS_NAME])
    model = _peft_from_pretrained(TinyBase(W.float()), path)
    s = lora_scaling(alpha, r, rslora)
    assert model.base_model.model.q_proj.scaling["default"] == pytest.approx(s)
    with torch.no_grad():
        q = model(X.float()).double()
    torch.testing.assert_close(q, X @ merge(W, A, B, s), rtol=1e-6, atol=1e-6)
    config = json.loads((path / CONFIG_NAME).read_text())
    assert (config["r"], config["lora_alpha"], config["use_rslora"]) == (r, alpha, rslora)
    assert config["target_modules"] == ["q_proj"] and config["peft_type"] == "LORA"


def test_export_matches_what_peft_saves(tmp_path):
    """Same keys, same tensor layout and dtype, and every config field we write is one PEFT writes, same value."""
    peft_model, peft_dir = _peft_saved(tmp_path, r=R, alpha=4, rslora=False)
    layer = peft_model.base_model.model.q_proj
    A, B = layer.lora_A["default"].weight.detach().T, layer.lora_B["default"].weight.detach().T
    ours = export_peft_adapter(tmp_path / "ours", A, B, r=R, alpha=4)
    theirs_t = load_safetensors((peft_dir / WEIGHTS_NAME).read_bytes())
    ours_t = load_safetensors((ours / WEIGHTS_NAME).read_bytes())
    assert sorted(ours_t) == sorted(theirs_t) == [KEY_A, KEY_B]
    for key in ours_t:
        assert torch.equal(ours_t[key], theirs_t[key]) and ours_t[key].dtype == torch.float32
        assert ours_t[key].is_contiguous() and ours_t[key].device.type == "cpu"
    theirs_c = json.loads((peft_dir / CONFIG_NAME).read_text())
    ours_c = json.loads((ours / CONFIG_NAME).read_text())
    assert set(ours_c) <= set(theirs_c)
    shared = set(ours_c) - {"init_lora_weights"}  # the PEFT model here was built with init_lora_weights=False
    assert {f: ours_c[f] for f in shared} == {f: theirs_c[f] for f in shared}
    for field in ("r", "lora_alpha", "use_rslora", "target_modules", "peft_type", "task_type", "bias",
                  "lora_dropout", "fan_in_fan_out", "init_lora_weights", "base_model_name_or_path"):
        assert field in ours_c


def test_peft_load_check_catches_wrong_keys(tmp_path):
    """The oracle above can fail: a file keyed without PEFT's prefix is reported by PEFT."""
    _, A, B = _factors(D, K, R)
    path = export_peft_adapter(tmp_path / "bad", A, B, r=R, alpha=2)
    tensors = load_safetensors((path / WEIGHTS_NAME).read_bytes())
    (path / WEIGHTS_NAME).write_bytes(save_safetensors({k.removeprefix("base_model.model."): v
                                                        for k, v in tensors.items()}))
    with pytest.raises(UserWarning, match="missing adapter keys"):
        _peft_from_pretrained(TinyBase(), path)


def test_export_dtype_and_nested_target(tmp_path):
    W, A, B = _factors(D, K, R)
    path = export_peft_adapter(tmp_path / "f64", A, B, r=R, alpha=3, dtype=torch.float64)
    tensors = load_safetensors((path / WEIGHTS_NAME).read_bytes())
    assert torch.equal(tensors[KEY_A], A.T) and tensors[KEY_A].dtype == torch.float64
    blob = adapter_zip_bytes(A, B, r=R, alpha=3, dtype=torch.bfloat16, target_module="attn.q_proj")
    loaded = load_peft_adapter_zip(blob, d=D, k=K)
    assert loaded.target_module == "attn.q_proj"
    torch.testing.assert_close(loaded.A, A.bfloat16().double(), rtol=0, atol=0)


def test_zip_bytes_are_deterministic_and_hold_the_two_files():
    _, A, B = _factors(D, K, R)
    blob = adapter_zip_bytes(A, B, r=R, alpha=2)
    assert blob == adapter_zip_bytes(A, B, r=R, alpha=2)
    assert sorted(_unzip(blob)) == sorted([CONFIG_NAME, WEIGHTS_NAME])


_, _A, _B = _factors(D, K, R)


@pytest.mark.parametrize("kwargs,words", [
    (dict(r=0), "rank r"), (dict(r=True), "rank r"), (dict(r=3), "with r=3"),
    (dict(alpha=0), "lora_alpha"), (dict(alpha=float("nan")), "lora_alpha"), (dict(alpha=-1.0), "lora_alpha"),
    (dict(rslora="yes"), "rslora"), (dict(target_module="q proj"), "target_module"),
    (dict(dtype=torch.int64), "floating-point"), (dict(A=_A[0]), "2-D"), (dict(B=_B.T), "with r=2"),
    (dict(A=_A * float("inf")), "non-finite"), (dict(A=_A * 1e6, dtype=torch.float16), "non-finite"),
])
def test_export_refuses_bad_arguments(kwargs, words):
    args = dict(A=_A, B=_B, r=R, alpha=2.0) | kwargs
    with pytest.raises(ValueError, match=words):
        adapter_zip_bytes(**args)


# --- PEFT / our zips → our loader ---------------------------------------------------------

@pytest.mark.parametrize("folder", ["", "my_adapter/"])
@pytest.mark.parametrize("r,alpha,rslora", [(2, 4, False), (3, 5, True)])
def test_peft_saved_zip_loads_exactly(tmp_path, folder, r, alpha, rslora):
    model, saved = _peft_saved(tmp_path, r, alpha, rslora)
    layer = model.base_model.model.q_proj
    loaded = load_peft_adapter_zip(_zip_dir(saved, folder), d=D, k=K)
    assert isinstance(loaded, LoadedAdapter)
    assert torch.equal(loaded.A, layer.lora_A["default"].weight.detach().double().T)  # d×r
    assert torch.equal(loaded.B, layer.lora_B["default"].weight.detach().double().T)  # r×k
    assert loaded.A.shape == (D, r) and loaded.B.shape == (r, K) and loaded.A.dtype == torch.float64
    assert (loaded.r, loaded.alpha, loaded.rslora, loaded.target_module) == (r, alpha, rslora, "q_proj")
    assert loaded.scaling == pytest.approx(layer.scaling["default"])


def test_our_zip_loads_back_the_same_tensors():
    _, A, B = _factors(D, K, 3, dtype=torch.float32)
    loaded = load_peft_adapter_zip(adapter_zip_bytes(A, B, r=3, alpha=6, rslora=True), d=D, k=K)
    assert torch.equal(loaded.A, A.double()) and torch.equal(loaded.B, B.double())
    assert (loaded.r, loaded.alpha, loaded.rslora, loaded.scaling) == (3, 6.0, True, pytest.approx(6 / 3 ** 0.5))


# --- properties ---------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(d=st.integers(1, 12), k=st.integers(1, 12), r=st.integers(1, 8), seed=st.integers(0, 2**31 - 1),
       alpha=st.floats(0.01, 64), rslora=st.booleans(), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_export_load_round_trip_is_exact(d, k, r, seed, alpha, rslora, dtype):
    r = min(r, d, k)  # a higher rank is refused (see test_rank_above_min_d_k_is_refused)
    _, A, B = _factors(d, k, r, seed=seed, dtype=dtype)
    loaded = load_peft_adapter_zip(adapter_zip_bytes(A, B, r=r, alpha=alpha, rslora=rslora, dtype=dtype), d=d, k=k)
    assert torch.equal(loaded.A, A.double()) and torch.equal(loaded.B, B.double())
    assert (loaded.r, loaded.alpha, loaded.rslora) == (r, alpha, rslora)
    assert loaded.scaling == lora_scaling(alpha, r, rslora)
