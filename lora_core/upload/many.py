"""Reading a whole PEFT LoRA adapter, any architecture, one module at a time: :func:`read_adapter`.

A source is a zip of the adapter folder (bytes), the folder's two files (a mapping of their names to bytes), or a
path on the server (a folder holding them, or a zip). Whatever it is, it is read in bounded steps:

- the config: strict JSON within :data:`CONFIG_MAX_BYTES`; r, lora_alpha, use_rslora, use_dora, fan_in_fan_out,
  rank_pattern and alpha_pattern (module names only: a pattern that is a regular expression is refused, as
  matching a stranger's expression could take any time), target_modules and the base model's name;
- the weights' header: within :data:`MANY_HEADER_MAX_BYTES`, every key, dtype, shape and offset checked against the
  config (each module's r from rank_pattern, lora_A r×d_in, lora_B d_out×r, DoRA's magnitude d_out) before any
  number is read. Keys that are not LoRA factors of a module (an embedding's lora_embedding_A, a
  modules_to_save copy) are listed with the reason and their bytes skipped, never silently dropped;
- the numbers: read in the file's order, a module handed over as soon as its factors are complete, so the reader
  holds one module (and any factor whose partner comes later) at a time. Values must be finite and within
  ±:data:`VALUE_LIMIT`.

The reading is lazy: :func:`read_adapter` checks the config and the header, and :meth:`AdapterFile.modules` reads
the numbers when iterated (again from the start each time).
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from ..adapter import CONFIG_NAME, KEY_PREFIX, MODULE_PATH, WEIGHTS_NAME
from ..checks import positive_int
from ..echo import shown
from ..lora import lora_scaling
from .config import parse_config
from .limits import DTYPE_BYTES, VALUE_LIMIT
from .sources import Source, Stream, open_source
from .strict_json import parse_json
from .weights import read_header_bytes

MANY_HEADER_MAX_BYTES = 2 * 1024 * 1024   # a 7B adapter's header: 448 keys, about 60 kB; 8,192 modules fit
MAX_MODULES = 8192                        # 80 layers × 7 linear layers is 560
MAX_PATTERN_KEYS = 512
MAX_RANK = 4096
_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64}
_LORA_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.(?:(?P<part>lora_[AB])\.weight|lora_magnitude_vector)$")
_EMBEDDING_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_embedding_[AB]$")
_NAME_KEY = re.compile(r"^[A-Za-z0-9_.]{1,300}$")   # a pattern key that names modules, no other regex syntax


class AdapterConfig(NamedTuple):
    r: int
    alpha: float
    rslora: bool
    dora: bool
    fan_in_fan_out: bool                 # GPT-2's Conv1D: the base weight is stored in×out (A and B are as always)
    rank_pattern: dict[str, int]
    alpha_pattern: dict[str, float]
    target_modules: tuple[str, ...]      # as the config lists them (a regular expression is shown as written)
    base_model: str                      # base_model_name_or_path, escaped and bounded for display


class ModuleInfo(NamedTuple):
    name: str          # the module's path in the base model, e.g. "model.layers.0.self_attn.q_proj"
    d_in: int
    d_out: int
    r: int
    alpha: float
    scaling: float
    dtype: str         # as stored: F16, BF16, F32 or F64


class ModuleFactors(NamedTuple):
    info: ModuleInfo
    A: torch.Tensor                  # d_in×r, float32 (exact from F16 and BF16; F64 kept as float64)
    B: torch.Tensor                  # r×d_out
    magnitude: torch.Tensor | None   # DoRA's m (d_out), None for plain LoRA

    @property
    def name(self) -> str:
        return self.info.name


class Skipped(NamedTuple):
    key: str       # escaped and bounded
    reason: str


class _Tensor(NamedTuple):
    key: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


# --- the config --------------------------------------------------------------------------------------------

def _bool(config: dict, name: str) -> bool:
    value = config.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValueError(f"{name} in {CONFIG_NAME} must be true or false, got {shown(repr(value))}")
    return value


def _alpha(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where} must be a finite number > 0, got {shown(repr(value))}")
    return float(value)


def _pattern(config: dict, name: str, read) -> dict:
    pattern = config.get(name) or {}
    if not isinstance(pattern, dict):
        raise ValueError(f"{name} in {CONFIG_NAME} must map module names to values")
    if len(pattern) > MAX_PATTERN_KEYS:
        raise ValueError(f"{name} in {CONFIG_NAME} has {len(pattern):,} entries; at most {MAX_PATTERN_KEYS} are read")
    out = {}
    for key, value in pattern.items():
        if not _NAME_KEY.match(key):
            raise ValueError(f"{name} in {CONFIG_NAME} has the key {shown(key, 60)}, which is not a module name "
                             f"(letters, digits, _ and .): a regular expression is not matched here")
        out[key] = read(value, f"{name}[{shown(key, 60)}] in {CONFIG_NAME}")
    return out


def _rank(value, where: str) -> int:
    positive_int(where, value, exact=True)
    if value > MAX_RANK:
        raise ValueError(f"{where} is {value:,}; at most {MAX_RANK:,} is read")
    return value


def read_config(blob: bytes) -> AdapterConfig:
    config = parse_config(blob)
    peft_type = config.get("peft_type")
    if peft_type != "LORA":
        raise ValueError(f"peft_type is {shown(repr(peft_type))}; only LoRA adapters ('LORA') are read here")
    for name in ("r", "lora_alpha"):
        if name not in config:
            raise ValueError(f"{CONFIG_NAME} has no {name!r}")
    targets = config.get("target_modules") or ()
    targets = (targets,) if isinstance(targets, str) else tuple(targets) if isinstance(targets, list) else ()
    base = config.get("base_model_name_or_path")
    return AdapterConfig(
        _rank(config["r"], f"r in {CONFIG_NAME}"), _alpha(config["lora_alpha"], f"lora_alpha in {CONFIG_NAME}"),
        _bool(config, "use_rslora"), _bool(config, "use_dora"), _bool(config, "fan_in_fan_out"),
        _pattern(config, "rank_pattern", _rank), _pattern(config, "alpha_pattern", _alpha),
        tuple(shown(str(t), 80) for t in targets[:64]), shown(str(base), 120) if isinstance(base, str) else "")


def _pattern_value(pattern: dict, module: str, default):
    """PEFT's get_pattern_key: the first key k with re.match(rf"(.*\\.)?({k})$", module); else the default."""
    for key, value in pattern.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


# --- the header --------------------------------------------------------------------------------------------

def _read_header(stream) -> tuple[dict[str, _Tensor], int]:
    _, raw = read_header_bytes(stream, MANY_HEADER_MAX_BYTES)
    header = parse_json(raw, f"the header of {WEIGHTS_NAME}")
    if not isinstance(header, dict):
        raise ValueError(f"{WEIGHTS_NAME}'s header must be a JSON object")
    header.pop("__metadata__", None)
    if len(header) > 3 * MAX_MODULES:  # lora_A, lora_B and a DoRA magnitude per module
        raise ValueError(f"{WEIGHTS_NAME} holds {len(header):,} tensors; at most {3 * MAX_MODULES:,} are read")
    out = {}
    for key, entry in header.items():
        label = shown(key.removeprefix(KEY_PREFIX), 100)
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(f"the header entry of {label} in {WEIGHTS_NAME} must hold dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not (isinstance(shape, list) and len(shape) <= 4
                and all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31 for s in shape)):
            raise ValueError(f"the shape of {label} in {WEIGHTS_NAME} is not a list of sizes")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) and not isinstance(o, bool) and 0 <= o for o in offsets)
                and offsets[0] <= offsets[1]):
            raise ValueError(f"the data_offsets of {label} in {WEIGHTS_NAME} are not [begin, end]")
        if not isinstance(dtype, str):
            raise ValueError(f"the dtype of {label} in {WEIGHTS_NAME} is not a name")
        out[key] = _Tensor(key, dtype, tuple(shape), offsets[0], offsets[1])
    end = 0
    for t in sorted(out.values(), key=lambda t: t.begin):
        if t.begin != end:
            raise ValueError(f"{WEIGHTS_NAME} is not a valid safetensors file (its tensors' data_offsets overlap "
                             f"or leave gaps)")
        end = t.end
    return out, end


def _size(t: _Tensor) -> int:
    return math.prod(t.shape) * DTYPE_BYTES.get(t.dtype, 0)


# --- the adapter ---------------------------------------------------------------------------------------------

@dataclass
class AdapterFile:
    """An adapter whose config and header passed every check; :meth:`modules` reads its numbers."""
    source: Source
    config: AdapterConfig
    infos: dict[str, ModuleInfo]                 # in the file's order of lora_A
    skipped: list[Skipped]
    _tensors: dict[str, _Tensor] = field(repr=False, default_factory=dict)
    _data_start: int = 0
    _data_bytes: int = 0

    @property
    def trained(self) -> int:
        """Numbers the adapter holds: r·(d_in + d_out) a module, plus d_out for DoRA."""
        return sum(m.r * (m.d_in + m.d_out) + (m.d_out if self.config.dora else 0) for m in self.infos.values())

    @property
    def file_bytes(self) -> int:
        return self.source.size

    def modules(self, only: set[str] | None = None) -> Iterator[ModuleFactors]:
        """Every module (or those in ``only``), read in the file's order; a module as soon as its factors are read."""
        stream = self.source.open_weights()
        try:
            stream.read(self._data_start)          # the length and the header, checked already
            wanted = {}
            for t in sorted(self._tensors.values(), key=lambda t: t.begin):
                module = _module_of(t.key)
                if module in self.infos and (only is None or module in only):
                    wanted[t.key] = t
            pending: dict[str, dict[str, torch.Tensor]] = {}
            pos = 0
            for t in sorted(self._tensors.values(), key=lambda t: t.begin):
                if t.begin > pos:
                    _skip(stream, t.begin - pos)
                    pos = t.begin
                if t.key not in wanted:
                    _skip(stream, t.end - t.begin)
                    pos = t.end
                    continue
                blob = stream.read(t.end - t.begin)
                if len(blob) < t.end - t.begin:
                    raise ValueError(f"{WEIGHTS_NAME} ends inside {shown(t.key.removeprefix(KEY_PREFIX), 100)}")
                pos = t.end
                module = _module_of(t.key)
                pending.setdefault(module, {})[_part_of(t.key)] = _values(t, blob)
                parts = pending[module]
                if "lora_A" in parts and "lora_B" in parts and (not self.config.dora or "m" in parts):
                    del pending[module]
                    yield ModuleFactors(self.infos[module], parts["lora_A"].T.contiguous(),
                                        parts["lora_B"].T.contiguous(), parts.get("m"))
        finally:
            stream.finish() if isinstance(stream, Stream) else None

    def module(self, name: str) -> ModuleFactors:
        if name not in self.infos:
            raise ValueError(f"the adapter has no module {shown(name, 100)}")
        return next(self.modules({name}))


def _skip(stream, n: int) -> None:
    while n > 0:
        chunk = stream.read(min(n, 1 << 20))
        if not chunk:
            raise ValueError(f"{WEIGHTS_NAME} ends before the data its header describes")
        n -= len(chunk)


def _module_of(key: str) -> str:
    m = _LORA_KEY.match(key)
    return m["module"] if m else ""


def _part_of(key: str) -> str:
    m = _LORA_KEY.match(key)
    return m["part"] or "m"


def _values(t: _Tensor, blob: bytes) -> torch.Tensor:
    x = torch.frombuffer(bytearray(blob), dtype=_DTYPES[t.dtype]).reshape(t.shape)
    x = x.to(torch.float64 if t.dtype == "F64" else torch.float32)
    bad = ~torch.isfinite(x) | (x.abs() > VALUE_LIMIT)
    if bool(bad.any()):
        at = tuple(int(v) for v in bad.nonzero()[0])
        value = float(x[at])
        why = "is not a finite number" if not math.isfinite(value) else f"is beyond ±{VALUE_LIMIT:g}"
        raise ValueError(f"{WEIGHTS_NAME}: {shown(t.key.removeprefix(KEY_PREFIX), 100)} holds {value:g} at {list(at)}, "
                         f"which {why}")
    return x


def _modules_of(config: AdapterConfig, tensors: dict[str, _Tensor]) -> tuple[dict[str, ModuleInfo], list[Skipped]]:
    skipped, parts = [], {}
    for key, t in tensors.items():
        label = shown(key.removeprefix(KEY_PREFIX), 100)
        if _EMBEDDING_KEY.match(key):
            skipped.append(Skipped(label, "an embedding's adapter (lora_embedding_A/B): a lookup table, not a "
                                          "matrix product, so it has no ΔW of a linear layer to show"))
            continue
        m = _LORA_KEY.match(key)
        if not m:
            skipped.append(Skipped(label, "not a LoRA factor (a modules_to_save copy or another tuner's tensor)"))
            continue
        if not MODULE_PATH.match(m["module"]):
            raise ValueError(f"{WEIGHTS_NAME} names the module {label}, which is not a module path")
        if t.dtype not in DTYPE_BYTES:
            raise ValueError(f"{label} is {shown(t.dtype)}; only floating-point weights ({', '.join(DTYPE_BYTES)}) "
                             f"are read")
        if t.end - t.begin != _size(t):
            raise ValueError(f"{label} has data_offsets [{t.begin}, {t.end}], but its "
                             f"{'×'.join(map(str, t.shape))} {t.dtype} values take {_size(t):,} bytes")
        parts.setdefault(m["module"], {})[m["part"] or "m"] = t
    if len(parts) > MAX_MODULES:
        raise ValueError(f"the adapter adapts {len(parts):,} modules; at most {MAX_MODULES:,} are read")
    infos = {}
    for module, p in sorted(parts.items(), key=lambda kv: kv[1].get("lora_A", next(iter(kv[1].values()))).begin):
        label = shown(module, 100)
        for part in ("lora_A", "lora_B"):
            if part not in p:
                raise ValueError(f"{label} has no {part}.weight in {WEIGHTS_NAME}")
        a, b = p["lora_A"].shape, p["lora_B"].shape
        if len(a) != 2 or len(b) != 2:
            raise ValueError(f"{label}'s lora_A is {'×'.join(map(str, a))} and lora_B {'×'.join(map(str, b))}: "
                             f"both must be matrices (a convolution's adapter is not read)")
        r = _pattern_value(config.rank_pattern, module, config.r)
        if a[0] != r or b[1] != r:
            raise ValueError(f"{label}'s lora_A is {a[0]}×{a[1]} and lora_B {b[0]}×{b[1]}, but {CONFIG_NAME} gives "
                             f"it r = {r}: lora_A must be r×d_in and lora_B d_out×r")
        if config.dora and "m" not in p:
            raise ValueError(f"{CONFIG_NAME} says use_dora=true but {label} has no lora_magnitude_vector")
        if not config.dora and "m" in p:
            raise ValueError(f"{label} has a DoRA lora_magnitude_vector, but {CONFIG_NAME} does not say use_dora=true")
        if "m" in p and p["m"].shape != (b[0],):
            raise ValueError(f"{label}'s lora_magnitude_vector has shape {'×'.join(map(str, p['m'].shape))}; it "
                             f"needs d_out = {b[0]} numbers")
        alpha = _pattern_value(config.alpha_pattern, module, config.alpha)
        dtypes = {t.dtype for t in p.values()}
        infos[module] = ModuleInfo(module, a[1], b[0], r, alpha, lora_scaling(alpha, r, config.rslora),
                                   "/".join(sorted(dtypes)))
    if not infos:
        raise ValueError(f"{WEIGHTS_NAME} holds no LoRA module a linear layer's ΔW can be read from"
                         + (f" ({len(skipped)} tensor{'s' if len(skipped) != 1 else ''} skipped: "
                            f"{skipped[0].reason})" if skipped else ""))
    return infos, skipped


def read_adapter(source) -> AdapterFile:
    """A PEFT LoRA adapter from a zip (bytes), its two files (a mapping of names to bytes) or a path on the server.

    Checks the config and the weights' header (every refusal a ValueError that names the file and the problem);
    the numbers are read when :meth:`AdapterFile.modules` is iterated.
    """
    src = open_source(source)
    config = read_config(src.open_config().read_all())
    stream = src.open_weights()
    try:
        tensors, data_bytes = _read_header(stream)
    finally:
        stream.finish() if isinstance(stream, Stream) else None
    header_len = 8 + int.from_bytes(_peek_len(src), "little")
    size = _weights_size(src)
    if header_len + data_bytes != size:
        raise ValueError(f"{WEIGHTS_NAME}'s header describes {header_len + data_bytes:,} bytes, but the file holds "
                         f"{size:,}")
    infos, skipped = _modules_of(config, tensors)
    return AdapterFile(src, config, infos, skipped, tensors, header_len, data_bytes)


def _weights_size(src: Source) -> int:
    """The weights file's size as its source declares it (a zip entry's declared size, checked while it inflates)."""
    stream = src.open_weights()
    try:
        return stream.size if isinstance(stream, Stream) else stream.info.file_size
    finally:
        stream.finish() if isinstance(stream, Stream) else None


def _peek_len(src: Source) -> bytes:
    stream = src.open_weights()
    try:
        return stream.read(8)
    finally:
        stream.finish() if isinstance(stream, Stream) else None


def adapters_dir() -> Path | None:
    """The folder a teacher names with LORA_ADAPTERS_DIR, or None; the page lists its adapters and reads nothing else."""
    value = os.environ.get("LORA_ADAPTERS_DIR", "").strip()
    return Path(value) if value else None
