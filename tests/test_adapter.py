"""PEFT adapter files: our export loads in real PEFT, PEFT's saves load in ours, and bad zips fail clearly."""
import io
import random
import json
import warnings
import zipfile

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from lora_core import lora_scaling, merge
from lora_core.adapter import (
    CONFIG_NAME, MAX_ADAPTER_BYTES, WEIGHTS_NAME, LoadedAdapter, adapter_zip_bytes, export_peft_adapter,
    load_peft_adapter_zip,
)

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
    mk = lambda *s: torch.randn(*s, generator=g).to(dtype)  # noqa: E731
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


# --- bad files ----------------------------------------------------------------------------

def _good() -> dict[str, bytes]:
    return _unzip(adapter_zip_bytes(_A, _B, r=R, alpha=2.0))


def _with_config(**changes) -> bytes:
    files = _good()
    config = json.loads(files[CONFIG_NAME]) | changes
    for field in [f for f, v in changes.items() if v is ...]:
        del config[field]
    return _zip(files | {CONFIG_NAME: json.dumps(config).encode()})


def _with_tensors(edit) -> bytes:
    files = _good()
    tensors = load_safetensors(files[WEIGHTS_NAME])
    edit(tensors)
    return _zip(files | {WEIGHTS_NAME: save_safetensors(tensors)})


def _without(name) -> bytes:
    return _zip({n: b for n, b in _good().items() if n != name})


def _pickle_instead() -> bytes:
    files = _good()
    buf = io.BytesIO()
    torch.save(load_safetensors(files.pop(WEIGHTS_NAME)), buf)
    return _zip(files | {"adapter_model.bin": buf.getvalue()})


def _pickle_named_safetensors() -> bytes:
    buf = io.BytesIO()
    torch.save(load_safetensors(_good()[WEIGHTS_NAME]), buf)
    return _zip(_good() | {WEIGHTS_NAME: buf.getvalue()})


def _bomb() -> bytes:
    # 4 MB of zeros deflates to a few kB: small on the wire, over the 1 MB limit once inflated
    return _zip(_good() | {"README.md": bytes(4_000_000)})


def _lying_size() -> bytes:
    # the entry declares 10 bytes but inflates to 100 kB
    blob = bytearray(_zip({CONFIG_NAME: b" " * 100_000, WEIGHTS_NAME: _good()[WEIGHTS_NAME]}))
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = blob.find(sig)
        blob[at + offset: at + offset + 4] = (10).to_bytes(4, "little")
    return bytes(blob)


def _set(key, value):
    return lambda t: t.__setitem__(key, value)


def _two_modules(t):
    t["base_model.model.v_proj.lora_A.weight"] = t[KEY_A].clone()
    t["base_model.model.v_proj.lora_B.weight"] = t[KEY_B].clone()


_nan_A = _A.T.float().contiguous()
_nan_A[0, 0] = float("nan")

BAD_FILES = [
    ("empty", lambda: b"", "empty"),
    ("random bytes", lambda: bytes(range(256)) * 4, "not a zip"),
    ("no config", lambda: _without(CONFIG_NAME), "no adapter_config.json"),
    ("no weights", lambda: _without(WEIGHTS_NAME), "no adapter_model.safetensors"),
    ("pickle .bin instead", _pickle_instead, "only safetensors is accepted, never a pickle"),
    ("pickle named .safetensors", _pickle_named_safetensors, "not a valid safetensors"),
    ("broken JSON", lambda: _zip(_good() | {CONFIG_NAME: b'{"r": 2,'}), "not valid JSON"),
    ("deeply nested JSON", lambda: _zip(_good() | {CONFIG_NAME: b"[" * 60_000}), "nests .* more than 32 levels"),
    ("config over 64 KiB", lambda: _zip(_good() | {CONFIG_NAME: b" " * 70_000 + b"{}"}),
     "adapter_config.json declares 70,002 bytes, over the limit of 65,536"),
    ("JSON not an object", lambda: _zip(_good() | {CONFIG_NAME: b"[2]"}), "JSON object"),
    ("config without r", lambda: _with_config(r=...), "no 'r'"),
    ("config without lora_alpha", lambda: _with_config(lora_alpha=...), "no 'lora_alpha'"),
    ("r not an integer", lambda: _with_config(r="2"), "r in adapter_config.json"),
    ("alpha negative", lambda: _with_config(lora_alpha=-2), "lora_alpha in adapter_config.json"),
    ("wrong peft_type", lambda: _with_config(peft_type="IA3"), "peft_type is 'IA3'"),
    ("DoRA", lambda: _with_config(use_dora=True), "DoRA"),
    ("rank_pattern", lambda: _with_config(rank_pattern={"q_proj": 4}), "rank_pattern"),
    ("truncated safetensors", lambda: _zip(_good() | {WEIGHTS_NAME: _good()[WEIGHTS_NAME][:-7]}),
     "not a valid safetensors"),
    ("missing lora_B", lambda: _with_tensors(lambda t: t.pop(KEY_B)), "missing lora_B.weight"),
    ("extra key", lambda: _with_tensors(_set("base_model.model.q_proj.lora_magnitude_vector", torch.ones(K))),
     "unexpected keys.*lora_magnitude_vector"),
    ("no tensors", lambda: _with_tensors(lambda t: t.clear()), "holds no lora_A"),
    ("wrong d", lambda: _with_tensors(_set(KEY_A, torch.zeros(R, D - 1))),
     f"lora_A.weight is 2×5 but this W_Q needs r×{D}"),
    ("wrong k", lambda: _with_tensors(_set(KEY_B, torch.zeros(K + 1, R))),
     f"lora_B.weight is 6×2 but this W_Q needs {K}×r"),
    ("A, B ranks differ", lambda: _with_tensors(_set(KEY_B, torch.zeros(K, R + 1))),
     "rank 2 but lora_B.weight has rank 3"),
    ("r mismatch", lambda: _with_config(r=3), "says r=3 but the weights have rank 2"),
    ("3-D tensor", lambda: _with_tensors(_set(KEY_A, torch.zeros(1, R, D))), "3 dimensions"),
    ("integer weights", lambda: _with_tensors(_set(KEY_A, torch.zeros(R, D, dtype=torch.int32))), "floating-point"),
    ("NaN values", lambda: _with_tensors(_set(KEY_A, _nan_A)), "lora_A.weight has non-finite"),
    ("two target modules", lambda: _with_tensors(_two_modules), "2 modules \\(q_proj, v_proj\\)"),
    ("two adapters", lambda: _zip({f"{f}/{n}": b for f in "ab" for n, b in _good().items()}), "2 adapters"),
    ("nested two folders deep", lambda: _zip({f"a/b/{n}": b for n, b in _good().items()}),
     "no adapter_config.json"),
    ("oversized", lambda: _zip(_good() | {"README.md": random.Random(0).randbytes(1_200_000)}),
     "the file is .* bytes, over the limit of 1,000,000"),
    ("zip bomb", _bomb, "declares .* bytes uncompressed"),
    ("declared size lies", _lying_size, "adapter_config.json .* inflates past its declared size of 10 bytes"),
]


@pytest.mark.parametrize("make,words", [pytest.param(m, w, id=i) for i, m, w in BAD_FILES])
def test_bad_files_raise_a_clear_value_error(make, words):
    with pytest.raises(ValueError, match=words):
        load_peft_adapter_zip(make(), d=D, k=K, max_bytes=1_000_000)


def test_good_file_passes_the_same_limits():
    """The bad files differ from this one only in their fault."""
    loaded = load_peft_adapter_zip(_zip(_good()), d=D, k=K, max_bytes=1_000_000)
    torch.testing.assert_close(loaded.A, _A.float().double(), rtol=0, atol=0)


@pytest.mark.parametrize("kwargs,words", [(dict(d=0), "d must"), (dict(k=2.0), "k must"),
                                          (dict(max_bytes=-1), "max_bytes"), (dict(data="zip"), "bytes")])
def test_loader_refuses_bad_arguments(kwargs, words):
    with pytest.raises(ValueError, match=words):
        load_peft_adapter_zip(**(dict(data=_zip(_good()), d=D, k=K) | kwargs))


def test_size_is_checked_before_opening():
    assert MAX_ADAPTER_BYTES == 17 * 1024 * 1024
    with pytest.raises(ValueError, match="over the limit of 10 bytes"):
        load_peft_adapter_zip(_zip(_good()), d=D, k=K, max_bytes=10)


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


_STORED = _zip(_good(), compression=zipfile.ZIP_STORED)  # uncompressed, so damage reaches the JSON and tensors


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_zips_raise_only_value_error(data):
    blob = bytearray(_STORED)
    for _ in range(data.draw(st.integers(1, 4))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    blob = blob[: data.draw(st.integers(0, len(blob)))]
    try:
        loaded = load_peft_adapter_zip(bytes(blob), d=D, k=K)
    except ValueError:
        return
    assert loaded.A.shape == (D, R) and torch.isfinite(loaded.A).all()
