"""The upload reader on bad files: every fault a clear ValueError, damaged zips nothing else (its caps: test_adapter_limits)."""
import io
import json
import random
import zipfile

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from lora_core.adapter import CONFIG_NAME, WEIGHTS_NAME, adapter_zip_bytes
from lora_core.upload import MAX_ADAPTER_BYTES, load_peft_adapter_zip

D, K, R = 6, 5, 2
KEY_A, KEY_B = "base_model.model.q_proj.lora_A.weight", "base_model.model.q_proj.lora_B.weight"


def _factors(d, k, r, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    # rounded through float32, so a float32 file holds them exactly
    mk = lambda *s: torch.randn(*s, generator=g).to(dtype)
    return mk(d, k), mk(d, r), mk(r, k)


def _unzip(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _zip(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, blob in files.items():
            zf.writestr(name, blob)
    return buf.getvalue()


_, _A, _B = _factors(D, K, R)


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
    # DoRA is read (its A and B are LoRA's, its m beside them): one that says DoRA but has no m is refused
    ("DoRA without its magnitude", lambda: _with_config(use_dora=True), "says use_dora=true but"),
    ("rank_pattern", lambda: _with_config(rank_pattern={"q_proj": 4}), "rank_pattern"),
    ("truncated safetensors", lambda: _zip(_good() | {WEIGHTS_NAME: _good()[WEIGHTS_NAME][:-7]}),
     "not a valid safetensors"),
    ("missing lora_B", lambda: _with_tensors(lambda t: t.pop(KEY_B)), "missing lora_B.weight"),
    ("extra key", lambda: _with_tensors(_set("base_model.model.q_proj.lora_C.weight", torch.ones(K))),
     "unexpected keys.*lora_C"),
    ("a magnitude without use_dora", lambda: _with_tensors(_set("base_model.model.q_proj.lora_magnitude_vector",
                                                                torch.ones(K))), "does not say use_dora=true"),
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


# --- damaged zips ------------------------------------------------------------------------

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
