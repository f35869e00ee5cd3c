"""An upload's adapter_model.safetensors: its header read and checked (keys, dtypes, shapes, offsets) before
safetensors is handed any bytes, and its values checked before they become our A and B.
"""
from __future__ import annotations

import math
import re
from typing import NamedTuple

import torch
from safetensors.torch import load as load_safetensors

from ..adapter import CONFIG_NAME, KEY_PREFIX, MODULE_PATH, WEIGHTS_NAME, peft_key
from ..checks import is_whole
from ..echo import shown, shown_list
from .archive import ZipEntry
from .limits import DTYPE_BYTES, HEADER_MAX_BYTES, VALUE_LIMIT
from .strict_json import parse_json

_KEY_RE = re.compile(r"^base_model\.model\.(?P<module>.+)\.(?:(?P<part>lora_[AB])\.weight|lora_magnitude_vector)$")
MAGNITUDE = "lora_magnitude_vector"  # DoRA's m, as save_pretrained writes it: no ".weight"


def _not_safetensors(why: str) -> ValueError:
    return ValueError(f"{WEIGHTS_NAME} is not a valid safetensors file ({why})")


class _TensorInfo(NamedTuple):
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _tensor_info(key: str, entry) -> _TensorInfo:
    label = shown(key.removeprefix(KEY_PREFIX))
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise _not_safetensors(f"the header entry of {label} must hold exactly dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str):
        raise _not_safetensors(f"the dtype of {label} is not a name")
    if not isinstance(shape, list) or not all(is_whole(n, 0, exact=True) for n in shape):
        raise _not_safetensors(f"the shape of {label} is not a list of sizes")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(is_whole(n, 0, exact=True) for n in offsets) \
            or offsets[0] > offsets[1]:
        raise _not_safetensors(f"the data_offsets of {label} are not [begin, end]")
    return _TensorInfo(dtype, tuple(shape), offsets[0], offsets[1])


def _parse_header(blob: bytes) -> dict[str, _TensorInfo]:
    header = parse_json(blob, f"the header of {WEIGHTS_NAME}")
    if not isinstance(header, dict):
        raise _not_safetensors(f"its header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _not_safetensors("its __metadata__ must map names to strings")
    return {key: _tensor_info(key, entry) for key, entry in header.items()}


def _split_keys(tensors: dict, dora: bool = False) -> tuple[str, object, object, object]:
    """The one adapted module's path, its lora_A.weight and lora_B.weight, and (DoRA) its lora_magnitude_vector;
    anything else is refused."""
    unexpected = sorted(key for key in tensors if not _KEY_RE.match(key))
    if unexpected:
        raise ValueError(f"{WEIGHTS_NAME} has unexpected keys ({shown_list(unexpected)}); "
                         f"only {KEY_PREFIX}<module>.lora_A.weight and .lora_B.weight are accepted"
                         + (f", and .{MAGNITUDE} for DoRA" if dora else ""))
    modules = sorted({_KEY_RE.match(key)["module"] for key in tensors})
    if not modules:
        raise ValueError(f"{WEIGHTS_NAME} holds no lora_A.weight or lora_B.weight")
    if len(modules) > 1:
        raise ValueError(f"the adapter adapts {len(modules)} modules ({shown_list(modules)}); "
                         f"only one adapted module is accepted")
    module = modules[0]
    if not MODULE_PATH.match(module):
        raise ValueError(f"{WEIGHTS_NAME} names the module {shown(module)}, which is not a module path")
    parts = []
    for part in ("lora_A", "lora_B"):
        key = peft_key(module, part)
        if key not in tensors:
            raise ValueError(f"{WEIGHTS_NAME} is missing {part}.weight (expected the key {shown(key)})")
        parts.append(tensors[key])
    magnitude_key = f"{KEY_PREFIX}{module}.{MAGNITUDE}"
    if dora and magnitude_key not in tensors:
        raise ValueError(f"{CONFIG_NAME} says use_dora=true but {WEIGHTS_NAME} has no {MAGNITUDE} "
                         f"(expected the key {shown(magnitude_key)})")
    if not dora and magnitude_key in tensors:
        raise ValueError(f"{WEIGHTS_NAME} holds a DoRA {MAGNITUDE}, but {CONFIG_NAME} does not say use_dora=true")
    return module, parts[0], parts[1], tensors.get(magnitude_key)


def _shape(shape) -> str:
    return "×".join(str(n) for n in shape)


def _check_magnitude_shape(m: _TensorInfo, k: int) -> None:
    """DoRA's magnitude: one floating-point number per output column of W_Q, k in all."""
    if m.dtype not in DTYPE_BYTES:
        raise ValueError(f"{MAGNITUDE} is {shown(m.dtype)}; only floating-point weights ({', '.join(DTYPE_BYTES)}) "
                         "are accepted")
    if tuple(m.shape) != (k,):
        raise ValueError(f"{MAGNITUDE} has shape {shown(_shape(m.shape) or 'scalar')}, but this W_Q has {k} output "
                         f"columns: it needs {k} numbers")


def _check_weight_shapes(lora_A: _TensorInfo, lora_B: _TensorInfo, d: int, k: int, r: int) -> None:
    """PEFT's layout against our W_Q (d×k): lora_A.weight is r×d and lora_B.weight is k×r."""
    for name, t in (("lora_A.weight", lora_A), ("lora_B.weight", lora_B)):
        if len(t.shape) != 2:
            raise ValueError(f"{name} has {len(t.shape)} dimensions ({shown(_shape(t.shape))}); "
                             f"it must be a matrix")
        if t.dtype not in DTYPE_BYTES:
            raise ValueError(f"{name} is {shown(t.dtype)}; only floating-point weights "
                             f"({', '.join(DTYPE_BYTES)}) are accepted")
    a, b = lora_A.shape, lora_B.shape
    if a[1] != d:
        raise ValueError(f"lora_A.weight is {_shape(a)} but this W_Q needs r×{d}")
    if b[0] != k:
        raise ValueError(f"lora_B.weight is {_shape(b)} but this W_Q needs {k}×r")
    if a[0] != b[1]:
        raise ValueError(f"lora_A.weight has rank {a[0]} but lora_B.weight has rank {b[1]}")
    if a[0] != r:
        raise ValueError(f"{CONFIG_NAME} says r={r} but the weights have rank {a[0]}")


def _check_offsets(tensors: dict[str, _TensorInfo]) -> int:
    """The bytes of data the header describes; each tensor's offsets must fit its shape and tile the data."""
    for key, t in tensors.items():
        size = math.prod(t.shape) * DTYPE_BYTES[t.dtype]
        if t.end - t.begin != size:
            raise ValueError(f"{shown(key.removeprefix(KEY_PREFIX))} has data_offsets [{t.begin}, {t.end}], "
                             f"but its {_shape(t.shape)} {t.dtype} values take {size:,} bytes")
    end = 0
    for t in sorted(tensors.values(), key=lambda t: t.begin):
        if t.begin != end:
            raise _not_safetensors("its tensors' data_offsets overlap or leave gaps")
        end = t.end
    return end


def read_header_bytes(entry, limit: int) -> tuple[bytes, bytes]:
    """The 8-byte header length and the JSON header of a safetensors file read from ``entry`` (anything with
    ``read(n)``), refused past ``limit`` bytes of header before any of it is read."""
    head = entry.read(8)
    if len(head) < 8:
        raise _not_safetensors(f"it is {len(head)} bytes long")
    n = int.from_bytes(head, "little")
    if n > limit:
        raise _not_safetensors(f"its header is {n:,} bytes long, over the limit of {limit:,} bytes")
    header = entry.read(n)
    if len(header) < n:
        raise _not_safetensors(f"it ends inside its {n:,}-byte header")
    return head, header


def read_weights(entry: ZipEntry, d: int, k: int, r: int, dora: bool = False) -> tuple[str, bytes]:
    """The safetensors bytes, read in three bounded steps: the header length, the header, then exactly
    the data the checked header describes. Nothing reaches safetensors before its header passed."""
    head, header = read_header_bytes(entry, HEADER_MAX_BYTES)
    n = len(header)
    tensors = _parse_header(header)
    module, lora_A, lora_B, magnitude = _split_keys(tensors, dora)
    _check_weight_shapes(lora_A, lora_B, d, k, r)
    if magnitude is not None:
        _check_magnitude_shape(magnitude, k)
    size = _check_offsets(tensors)
    body = entry.read(size)
    if len(body) < size:
        raise _not_safetensors(f"it ends after {8 + n + len(body):,} bytes; its header promises {8 + n + size:,}")
    entry.finish()
    return module, head + header + body


def parse_weights(blob: bytes) -> dict[str, torch.Tensor]:
    """The tensors of safetensors bytes that :func:`read_weights` checked; any failure of the parser is bad input."""
    try:
        # safetensors is a JSON header plus raw numbers: parsing it cannot run code, unlike torch.load
        return load_safetensors(blob)
    except Exception as exc:  # noqa: BLE001 - a foreign parser on untrusted bytes; report any failure as bad input
        raise _not_safetensors(shown(exc, 120)) from None


def magnitude_values(t: torch.Tensor) -> torch.Tensor:
    """DoRA's m as float64, refused if any value is not finite or beyond ±VALUE_LIMIT (the cast is exact)."""
    x = t.to(torch.float64)
    bad = (~torch.isfinite(x) | (x.abs() > VALUE_LIMIT)).nonzero().flatten()
    if bad.numel():
        j, value = int(bad[0]), float(x[int(bad[0])])
        rest = f" (and {bad.numel() - 1:,} more)" if bad.numel() > 1 else ""
        why = "is not a finite number" if not math.isfinite(value) else f"is beyond the limit of ±{VALUE_LIMIT:g}"
        raise ValueError(f"{MAGNITUDE}[{j}] is {value:g}, which {why}{rest}")
    return x


def to_our_orientation(name: str, t: torch.Tensor) -> torch.Tensor:
    """float64 and transposed back to our orientation, refused if any value is not finite or beyond ±VALUE_LIMIT.

    The cast is exact for every accepted dtype, so the check sees the stored values."""
    x = t.to(torch.float64)
    bad = ~torch.isfinite(x) | (x.abs() > VALUE_LIMIT)
    if bad.any():
        where = bad.nonzero()
        i, j = (int(v) for v in where[0])
        value, more = float(x[i, j]), len(where) - 1
        rest = f" (and {more:,} more)" if more else ""
        if not math.isfinite(value):
            raise ValueError(f"{name} has non-finite values: {value} at [{i}, {j}]{rest}")
        raise ValueError(f"{name} holds {value:g} at [{i}, {j}]{rest}, beyond the limit of ±{VALUE_LIMIT:g}")
    return x.T.contiguous()
