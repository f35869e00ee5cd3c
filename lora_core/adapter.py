"""PEFT adapter files: export our A, B as a LoRA adapter (one matrix, or many modules of a model), and read
one matrix's adapter back safely.

Reading an upload is bounded in memory and time whatever the file claims: the zip's directory is
bounded before zipfile parses it, the two entries read are inflated by this module in small steps
with their declared sizes checked against the actual ones, and the safetensors header is read and
checked (keys, dtypes, shapes, offsets) before safetensors is handed any bytes.
"""
from __future__ import annotations

import io
import json
import math
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .echo import shown
from .example import MAX_DIM
from .lora import lora_scaling

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"

# --- what an upload may hold. Each cap is checked while reading, so nothing past it is ever inflated.
VALUE_LIMIT = 1e6             # |w| above this is refused; lora_app.config.explore.CELL_LIMIT is the same limit
CONFIG_MAX_BYTES = 64 * 1024  # PEFT 0.21 writes 1.1 kB of config
HEADER_MAX_BYTES = 64 * 1024  # the safetensors JSON header: PEFT's is 224 bytes for one module
JSON_MAX_DEPTH = 32           # PEFT's config nests 2 levels; a deeper one is refused before json.loads sees it
MAX_ENTRIES = 64              # PEFT's folder has 3 files; macOS's zips can add a __MACOSX/ twin for each
CENTRAL_DIRECTORY_MAX_BYTES = 64 * 1024  # zipfile builds an object per record: bound them before it reads any
DTYPE_BYTES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}  # safetensors' names of the accepted float dtypes
_MIB = 1024 * 1024


def weights_max_bytes(d: int, k: int, r: int | None = None) -> int:
    """The largest adapter_model.safetensors for a d×k matrix: lora_A (r×d) and lora_B (k×r) in the widest
    accepted dtype, at rank ``r`` (by default the largest, min(d, k)), plus the 8-byte length and the header."""
    r = min(d, k) if r is None else r
    return 8 + HEADER_MAX_BYTES + max(DTYPE_BYTES.values()) * r * (d + k)


# the largest upload: the config and the weights at d = k = r = MAX_DIM in float64 (16 MiB), rounded up to whole
# MiB with room for the zip's own records; .streamlit/config.toml's server.maxUploadSize is this in MiB (17)
MAX_ADAPTER_BYTES = -(-(CONFIG_MAX_BYTES + weights_max_bytes(MAX_DIM, MAX_DIM) + CENTRAL_DIRECTORY_MAX_BYTES
                        + 256 * 1024) // _MIB) * _MIB

# peft saves a top-level module `q_proj` under these keys, with the adapter name ("default") stripped
KEY_PREFIX = "base_model.model."
_KEY_RE = re.compile(r"^base_model\.model\.(?P<module>.+)\.(?P<part>lora_[AB])\.weight$")
_MODULE_RE = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
# torch.save and friends write pickles, and unpickling runs arbitrary code
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
# 1980-01-01 is the earliest zip time: fixed, so the same adapter always zips to the same bytes
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class LoadedAdapter(NamedTuple):
    A: torch.Tensor      # d×r float64, our orientation (lora_A.weight transposed)
    B: torch.Tensor      # r×k float64, our orientation (lora_B.weight transposed)
    r: int               # rank, from the config and checked against the tensors
    alpha: float         # lora_alpha
    rslora: bool         # use_rslora: s = α/√r instead of α/r
    target_module: str   # the adapted module's path in the base model, e.g. "q_proj"
    scaling: float       # s, as PEFT computes it


def peft_key(target_module: str, part: str) -> str:
    """The key PEFT's ``save_pretrained`` uses, e.g. ``base_model.model.q_proj.lora_A.weight``."""
    return f"{KEY_PREFIX}{target_module}.{part}.weight"


# --- export -------------------------------------------------------------------------------

def _check_export_args(A, B, r, alpha, target_module, rslora, dtype) -> None:
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"rank r must be a positive integer, got {r!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"lora_alpha must be a finite number > 0, got {alpha!r}")
    if not isinstance(rslora, bool):
        raise ValueError(f"rslora must be True or False, got {rslora!r}")
    if not isinstance(target_module, str) or not _MODULE_RE.match(target_module):
        raise ValueError(f"target_module must be a module path such as 'q_proj', got {target_module!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype!r}")
    for name, t in (("A", A), ("B", B)):
        if not isinstance(t, torch.Tensor) or t.dim() != 2:
            raise ValueError(f"{name} must be a 2-D torch tensor")
    if A.shape[1] != r or B.shape[0] != r:
        raise ValueError(f"A is {A.shape[0]}×{A.shape[1]} and B is {B.shape[0]}×{B.shape[1]}; "
                         f"with r={r} they must be d×{r} and {r}×k")


def _peft_tensors(adapters: dict, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    # peft stores the transposes: lora_A.weight = Aᵀ (r×d), lora_B.weight = Bᵀ (k×r)
    tensors = {}
    for module, (A, B) in adapters.items():
        tensors[peft_key(module, "lora_A")] = A.detach().to("cpu", dtype).T.contiguous()
        tensors[peft_key(module, "lora_B")] = B.detach().to("cpu", dtype).T.contiguous()
    for key, t in tensors.items():
        # checked after the cast: a finite float64 can overflow to inf in float16
        if not torch.isfinite(t).all():
            raise ValueError(f"{key.removeprefix(KEY_PREFIX)} has non-finite values (NaN or inf) in {dtype}")
    return tensors


def _peft_config(r: int, alpha: float, target_modules: list[str], rslora: bool) -> dict:
    """The fields ``LoraConfig.save_pretrained`` writes that matter for loading plain LoRA modules."""
    return {
        "peft_type": "LORA",
        "task_type": None,
        "base_model_name_or_path": None,
        "revision": None,
        "inference_mode": True,
        "r": r,
        "lora_alpha": alpha,
        "use_rslora": rslora,
        "target_modules": list(target_modules),
        "lora_dropout": 0.0,
        "bias": "none",
        "lora_bias": False,
        "use_dora": False,
        "fan_in_fan_out": False,
        # only decides the starting values, which the saved weights then replace
        "init_lora_weights": True,
        "modules_to_save": None,
        "layers_to_transform": None,
        "layers_pattern": None,
        "rank_pattern": {},
        "alpha_pattern": {},
    }


def _files(adapters: dict, *, r, alpha, rslora, dtype) -> dict[str, bytes]:
    """The two files of an adapter whose inputs were checked; ``adapters`` maps module path → (A, B)."""
    weights = save_safetensors(_peft_tensors(adapters, dtype), metadata={"format": "pt"})
    config = json.dumps(_peft_config(r, alpha, list(adapters), rslora), indent=2, sort_keys=True)
    return {CONFIG_NAME: config.encode(), WEIGHTS_NAME: weights}


def _adapter_files(A, B, *, r, alpha, target_module, rslora, dtype) -> dict[str, bytes]:
    _check_export_args(A, B, r, alpha, target_module, rslora, dtype)
    return _files({target_module: (A, B)}, r=r, alpha=alpha, rslora=rslora, dtype=dtype)


def _check_many(adapters, r, alpha, rslora, dtype) -> dict:
    """The modules in sorted order (so the same adapters always give the same bytes), each pair checked."""
    if not isinstance(adapters, dict) or not adapters:
        raise ValueError("adapters must be a non-empty dict mapping module paths such as 'layers.0.q_proj' "
                         "to (A, B) pairs")
    for module in adapters:
        if not isinstance(module, str) or not _MODULE_RE.match(module):
            raise ValueError(f"module names must be paths such as 'layers.0.q_proj' (letters, digits and _ "
                             f"between dots), got {shown(repr(module))}")
    out = {}
    for module in sorted(adapters):
        pair = adapters[module]
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"{module}: expected an (A, B) pair, got {type(pair).__name__}")
        A, B = pair
        try:
            _check_export_args(A, B, r, alpha, module, rslora, dtype)
        except ValueError as exc:
            raise ValueError(f"{module}: {exc}") from None
        out[module] = (A, B)
    return out


def _write_folder(path, files: dict[str, bytes]) -> Path:
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    for name, blob in files.items():
        (out / name).write_bytes(blob)
    return out


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, blob in files.items():
            zf.writestr(zipfile.ZipInfo(name, _ZIP_TIME), blob, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def export_peft_adapter(path, A: torch.Tensor, B: torch.Tensor, *, r: int, alpha: float,
                        target_module: str = "q_proj", rslora: bool = False,
                        dtype: torch.dtype = torch.float32) -> Path:
    """Write a directory that ``PeftModel.from_pretrained(model, path)`` loads onto ``model.<target_module>``."""
    return _write_folder(path, _adapter_files(A, B, r=r, alpha=alpha, target_module=target_module,
                                              rslora=rslora, dtype=dtype))


def adapter_zip_bytes(A: torch.Tensor, B: torch.Tensor, *, r: int, alpha: float,
                      target_module: str = "q_proj", rslora: bool = False,
                      dtype: torch.dtype = torch.float32) -> bytes:
    """The same two files as :func:`export_peft_adapter`, zipped in memory (for a download button)."""
    return _zip(_adapter_files(A, B, r=r, alpha=alpha, target_module=target_module, rslora=rslora, dtype=dtype))


def export_peft_adapters(path, adapters: dict[str, tuple[torch.Tensor, torch.Tensor]], *, r: int, alpha: float,
                         rslora: bool = False, dtype: torch.dtype = torch.float32) -> Path:
    """Write one PEFT adapter for many modules, e.g. ``{"layers.0.q_proj": (A, B), …}`` with A d_in×r, B r×d_out.

    ``target_modules`` lists the full module paths, so ``PeftModel.from_pretrained(model, path)`` adapts
    exactly those modules of ``model``; every module shares one r and one lora_alpha, as PEFT's config does.
    """
    checked = _check_many(adapters, r, alpha, rslora, dtype)
    return _write_folder(path, _files(checked, r=r, alpha=alpha, rslora=rslora, dtype=dtype))


def adapters_zip_bytes(adapters: dict[str, tuple[torch.Tensor, torch.Tensor]], *, r: int, alpha: float,
                       rslora: bool = False, dtype: torch.dtype = torch.float32) -> bytes:
    """The same two files as :func:`export_peft_adapters`, zipped in memory (for a download button)."""
    checked = _check_many(adapters, r, alpha, rslora, dtype)
    return _zip(_files(checked, r=r, alpha=alpha, rslora=rslora, dtype=dtype))


# --- import -------------------------------------------------------------------------------

# everything a damaged or hostile zip can make zipfile/zlib raise
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError,
               RuntimeError, NotImplementedError, KeyError, ValueError, OverflowError, struct.error,
               UnicodeDecodeError)
_CHUNK = 64 * 1024  # input fed to zlib per step; zlib never returns more than it is asked for
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_METHOD_NAMES = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA", 9: "deflate64"}


def _check_load_args(data, d, k, max_bytes) -> None:
    for name, v in (("d", d), ("k", k), ("max_bytes", max_bytes)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {shown(repr(v))}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"the adapter must be given as bytes, got {type(data).__name__}")
    # checked before opening, so a huge upload is never parsed at all
    if len(data) > max_bytes:
        raise ValueError(f"the file is {len(data):,} bytes, over the limit of {max_bytes:,} bytes")
    if len(data) == 0:
        raise ValueError("the file is empty; upload a .zip holding adapter_config.json and adapter_model.safetensors")


def _central_directory(data: bytes) -> tuple[int, int]:
    """The entry count and central-directory size the end record declares, found as zipfile finds them.

    zipfile creates one object per central-directory record while opening, so both are bounded here,
    before zipfile reads any record.
    """
    size, eocd = len(data), -1
    if size >= 22 and data[-22:-18] == b"PK\x05\x06" and data[-2:] == b"\0\0":
        eocd = size - 22
    else:
        eocd = data.rfind(b"PK\x05\x06", max(size - 65536 - 22, 0))
    if eocd < 0 or eocd + 22 > size:
        raise ValueError("the file is not a zip archive (it has no end-of-archive record)")
    *_, count, cd_size, _, _ = struct.unpack_from("<4s4H2IH", data, eocd)
    # a zip64 locator just before the end record replaces both numbers, as zipfile reads them
    if eocd >= 20 + 56 and data[eocd - 20: eocd - 16] == b"PK\x06\x07" and \
            data[eocd - 76: eocd - 72] == b"PK\x06\x06":
        count, cd_size = struct.unpack_from("<4sQ2H2L4Q", data, eocd - 76)[7:9]
    return count, cd_size


def _check_entry_counts(data: bytes) -> None:
    count, cd_size = _central_directory(data)
    if count > MAX_ENTRIES or cd_size > CENTRAL_DIRECTORY_MAX_BYTES:
        raise ValueError(f"the zip declares {count:,} entries in a central directory of {cd_size:,} bytes; "
                         f"at most {MAX_ENTRIES} entries in {CENTRAL_DIRECTORY_MAX_BYTES:,} bytes are accepted")


def _open_zip(data: bytes) -> zipfile.ZipFile:
    _check_entry_counts(data)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS as exc:
        raise ValueError(f"the file is not a zip archive ({shown(exc)})") from None
    if len(zf.infolist()) > MAX_ENTRIES:  # the bound above already implies it; this says it plainly
        zf.close()
        raise ValueError(f"the zip holds {len(zf.infolist()):,} entries; at most {MAX_ENTRIES} are accepted")
    return zf


def _check_declared_sizes(zf: zipfile.ZipFile, max_bytes: int) -> None:
    # a zip bomb is small on the wire and huge inflated: refuse by the sizes the archive declares
    # (the two entries that are read are also checked against their actual sizes while being read)
    total = sum(info.file_size for info in zf.infolist())
    if total > max_bytes:
        raise ValueError(f"the zip declares {total:,} bytes uncompressed, over the limit of {max_bytes:,} bytes")


def _refuse_pickles(names: list[str]) -> None:
    pickles = [n for n in names if n.lower().endswith(_PICKLE_SUFFIXES)]
    if pickles:
        raise ValueError(f"the zip holds {_names(pickles)}: only safetensors is accepted, never a pickle "
                         f"(save with safe_serialization=True)")


def _names(values, most: int = 3) -> str:
    """Names from the file, each bounded, at most ``most`` of them and a count of the rest."""
    values = list(values)
    rest = len(values) - most
    return ", ".join(shown(v) for v in values[:most]) + (f" and {rest:,} more" if rest > 0 else "")


def _find_adapter(names: list[str]) -> tuple[str, str]:
    """Paths of the config and the weights, at the zip's top level or inside one folder."""
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"the zip holds {_names(twice)} more than once")
    shallow = [n for n in names if n.count("/") <= 1]
    configs = [n for n in shallow if n.rsplit("/", 1)[-1] == CONFIG_NAME]
    if not configs:
        raise ValueError(f"the zip has no {CONFIG_NAME} (looked at its top level and inside one folder)")
    if len(configs) > 1:
        raise ValueError(f"the zip holds {len(configs)} adapters ({_names(configs)}); upload one")
    weights = configs[0][: -len(CONFIG_NAME)] + WEIGHTS_NAME
    if weights not in names:
        raise ValueError(f"the zip has no {WEIGHTS_NAME} beside {shown(configs[0])}")
    return configs[0], weights


class _Entry:
    """One zip entry, inflated only as far as it is read, its declared sizes checked against the actual ones.

    zipfile is used for the directory only: it inflates bzip2 and LZMA entries in one call, whatever
    their size, and silently cuts an entry that inflates past its declared size. Here only stored and
    deflate entries are accepted, zlib is never asked for more than the caller reads, and an entry
    that declares more than ``limit`` bytes, or inflates past what it declares, is refused.
    """

    def __init__(self, data: bytes, info: zipfile.ZipInfo, limit: int):
        self.info, self.label = info, shown(info.filename)
        if info.flag_bits & 0x41:
            raise ValueError(f"{self.label} is encrypted; upload an unencrypted zip")
        if info.compress_type not in _METHODS:
            method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
            raise ValueError(f"{self.label} uses {method} compression; only stored and deflate entries "
                             f"(what every zip tool writes by default) are accepted")
        if info.file_size > limit:
            raise ValueError(f"{self.label} declares {info.file_size:,} bytes, over the limit of {limit:,} bytes "
                             f"for it")
        start = self._data_start(data, info)
        if start + info.compress_size > len(data):
            raise ValueError(f"{self.label} declares {info.compress_size:,} compressed bytes, but only "
                             f"{max(len(data) - start, 0):,} bytes of the file follow its header")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise ValueError(f"{self.label} is stored uncompressed but declares {info.compress_size:,} compressed "
                             f"and {info.file_size:,} uncompressed bytes")
        self._src = memoryview(data)[start: start + info.compress_size]
        self._pos = 0
        self._inflater = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
        self._out, self._crc = 0, 0

    def _data_start(self, data: bytes, info: zipfile.ZipInfo) -> int:
        at = info.header_offset
        if at < 0 or at + 30 > len(data) or data[at: at + 4] != b"PK\x03\x04":
            raise ValueError(f"{self.label} could not be read from the zip (no local header where the "
                             f"directory points)")
        name_len, extra_len = struct.unpack_from("<2H", data, at + 26)
        raw = bytes(data[at + 30: at + 30 + name_len])
        name = raw.decode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace")
        if name != info.orig_filename:
            raise ValueError(f"{self.label} could not be read from the zip (its local header names "
                             f"{shown(name)})")
        return at + 30 + name_len + extra_len

    def read(self, n: int) -> bytes:
        """Up to ``n`` more bytes; fewer only where the entry ends. Never inflates more than asked for."""
        # one byte past the declared size is enough to catch an entry that lies about it
        want = min(n, self.info.file_size + 1 - self._out)
        parts, got = [], 0
        while got < want:
            if self._inflater is None:
                chunk = bytes(self._src[self._pos: self._pos + want - got])
                self._pos += len(chunk)
                if not chunk:
                    break
            else:
                if self._inflater.eof:
                    break
                source = self._inflater.unconsumed_tail
                if not source:
                    # the next input, or none: zlib may still hold output for input it has taken
                    source = self._src[self._pos: self._pos + _CHUNK]
                    self._pos += len(source)
                try:
                    chunk = self._inflater.decompress(source, want - got)
                except zlib.error as exc:
                    raise ValueError(f"{self.label} could not be read from the zip ({shown(exc)})") from None
                if not chunk and not source:
                    raise ValueError(f"{self.label} could not be read from the zip: its compressed data stops "
                                     f"before its deflate stream ends (declared compressed size "
                                     f"{self.info.compress_size:,} bytes)")
            parts.append(chunk)
            got += len(chunk)
        blob = b"".join(parts)
        self._out += len(blob)
        self._crc = zlib.crc32(blob, self._crc)
        if self._out > self.info.file_size:
            raise ValueError(f"{self.label} could not be read from the zip: it inflates past its declared size "
                             f"of {self.info.file_size:,} bytes")
        return blob

    def finish(self) -> None:
        """The entry must end exactly where it declares, and where its compressed data ends, with its CRC."""
        self.read(1)  # raises if anything is left past the declared size
        declared, used = self.info.compress_size, self._pos - len(self._inflater.unused_data if self._inflater else b"")
        if self._inflater is not None and not self._inflater.eof:
            raise ValueError(f"{self.label} could not be read from the zip: its compressed data stops before its "
                             f"deflate stream ends (declared compressed size {declared:,} bytes)")
        if self._inflater is not None and (self._inflater.unused_data or self._pos < len(self._src)):
            raise ValueError(f"{self.label} declares {declared:,} compressed bytes, but its deflate stream ends "
                             f"after {used:,}")
        if self._out < self.info.file_size:
            raise ValueError(f"{self.label} holds {self._out:,} bytes, fewer than the {self.info.file_size:,} "
                             f"it declares")
        if self._crc != self.info.CRC:
            raise ValueError(f"{self.label} could not be read from the zip: it fails its CRC-32 check")

    def read_all(self) -> bytes:
        blob = self.read(self.info.file_size)
        self.finish()
        return blob


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _json_depth_over(text: str, limit: int) -> bool:
    """Whether lists and objects nest deeper than ``limit``, outside strings (json.loads recurses per level)."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _parse_json(blob: bytes, what: str):
    """JSON from the file, refused before parsing if it nests too deep, and refused if a key repeats."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{what} is not valid JSON (it is not UTF-8 text)") from None
    if _json_depth_over(text, JSON_MAX_DEPTH):
        raise ValueError(f"{what} nests lists or objects more than {JSON_MAX_DEPTH} levels deep; "
                         f"it is not an adapter's JSON")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise ValueError(f"{what} has the key {shown(exc.args[0])} twice") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise ValueError(f"{what} is not valid JSON ({type(exc).__name__})") from None


def _parse_config(blob: bytes) -> dict:
    config = _parse_json(blob, CONFIG_NAME)
    if not isinstance(config, dict):
        raise ValueError(f"{CONFIG_NAME} must hold a JSON object, got {type(config).__name__}")
    return config


def _config_hyperparams(config: dict, d: int, k: int) -> tuple[int, float, bool]:
    """r, lora_alpha and use_rslora from a LoRA config, refusing what one plain A·B cannot represent."""
    if config.get("peft_type") != "LORA":
        raise ValueError(f"peft_type is {shown(repr(config.get('peft_type')))}; only 'LORA' adapters are accepted")
    for field in ("r", "lora_alpha"):
        if field not in config:
            raise ValueError(f"{CONFIG_NAME} has no {field!r}")
    r, alpha, rslora = config["r"], config["lora_alpha"], config.get("use_rslora", False)
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"r in {CONFIG_NAME} must be a positive integer, got {shown(repr(r))}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"lora_alpha in {CONFIG_NAME} must be a finite number > 0, got {shown(repr(alpha))}")
    if not isinstance(rslora, bool):
        raise ValueError(f"use_rslora in {CONFIG_NAME} must be true or false, got {shown(repr(rslora))}")
    if r > min(d, k):
        raise ValueError(f"r = {r:,} in {CONFIG_NAME} is above min(d, k) = {min(d, k)}: "
                         f"a {d}×{k} matrix has rank at most {min(d, k)}")
    _refuse_variants(config)
    return r, float(alpha), rslora


def _refuse_variants(config: dict) -> None:
    # each of these changes what the stored tensors mean, so reading them as plain A, B would be wrong
    if config.get("use_dora"):
        raise ValueError("this is a DoRA adapter (use_dora=true); only plain LoRA is accepted")
    if config.get("fan_in_fan_out"):
        raise ValueError("fan_in_fan_out=true (a Conv1D layout such as GPT-2's) is not accepted; "
                         "only nn.Linear adapters")
    for field in ("rank_pattern", "alpha_pattern"):
        if config.get(field):
            raise ValueError(f"{field} is set in {CONFIG_NAME}; only one r and one lora_alpha are accepted")


def _not_safetensors(why: str) -> ValueError:
    return ValueError(f"{WEIGHTS_NAME} is not a valid safetensors file ({why})")


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


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
    if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
        raise _not_safetensors(f"the shape of {label} is not a list of sizes")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(n) for n in offsets) \
            or offsets[0] > offsets[1]:
        raise _not_safetensors(f"the data_offsets of {label} are not [begin, end]")
    return _TensorInfo(dtype, tuple(shape), offsets[0], offsets[1])


def _parse_header(blob: bytes) -> dict[str, _TensorInfo]:
    header = _parse_json(blob, f"the header of {WEIGHTS_NAME}")
    if not isinstance(header, dict):
        raise _not_safetensors(f"its header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _not_safetensors("its __metadata__ must map names to strings")
    return {key: _tensor_info(key, entry) for key, entry in header.items()}


def _split_keys(tensors: dict) -> tuple[str, object, object]:
    """The one adapted module's path and its lora_A.weight, lora_B.weight; anything else is refused."""
    unexpected = sorted(key for key in tensors if not _KEY_RE.match(key))
    if unexpected:
        raise ValueError(f"{WEIGHTS_NAME} has unexpected keys ({_names(unexpected)}); "
                         f"only {KEY_PREFIX}<module>.lora_A.weight and .lora_B.weight are accepted")
    modules = sorted({_KEY_RE.match(key)["module"] for key in tensors})
    if not modules:
        raise ValueError(f"{WEIGHTS_NAME} holds no lora_A.weight or lora_B.weight")
    if len(modules) > 1:
        raise ValueError(f"the adapter adapts {len(modules)} modules ({_names(modules)}); "
                         f"only one adapted module is accepted")
    module = modules[0]
    if not _MODULE_RE.match(module):
        raise ValueError(f"{WEIGHTS_NAME} names the module {shown(module)}, which is not a module path")
    parts = []
    for part in ("lora_A", "lora_B"):
        key = peft_key(module, part)
        if key not in tensors:
            raise ValueError(f"{WEIGHTS_NAME} is missing {part}.weight (expected the key {shown(key)})")
        parts.append(tensors[key])
    return module, parts[0], parts[1]


def _shape(shape) -> str:
    return "×".join(str(n) for n in shape)


def _check_shapes(lora_A: _TensorInfo, lora_B: _TensorInfo, d: int, k: int, r: int) -> None:
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


def _read_weights(entry: _Entry, d: int, k: int, r: int) -> tuple[str, bytes]:
    """The safetensors bytes, read in three bounded steps: the header length, the header, then exactly
    the data the checked header describes. Nothing reaches safetensors before its header passed."""
    head = entry.read(8)
    if len(head) < 8:
        raise _not_safetensors(f"it is {len(head)} bytes long")
    n = int.from_bytes(head, "little")
    if n > HEADER_MAX_BYTES:
        raise _not_safetensors(f"its header is {n:,} bytes long, over the limit of {HEADER_MAX_BYTES:,} bytes")
    header = entry.read(n)
    if len(header) < n:
        raise _not_safetensors(f"it ends inside its {n:,}-byte header")
    tensors = _parse_header(header)
    module, lora_A, lora_B = _split_keys(tensors)
    _check_shapes(lora_A, lora_B, d, k, r)
    size = _check_offsets(tensors)
    body = entry.read(size)
    if len(body) < size:
        raise _not_safetensors(f"it ends after {8 + n + len(body):,} bytes; its header promises {8 + n + size:,}")
    entry.finish()
    return module, head + header + body


def _parse_weights(blob: bytes) -> dict[str, torch.Tensor]:
    try:
        # safetensors is a JSON header plus raw numbers: parsing it cannot run code, unlike torch.load
        return load_safetensors(blob)
    except Exception as exc:  # noqa: BLE001 - a foreign parser on untrusted bytes; report any failure as bad input
        raise _not_safetensors(shown(exc, 120)) from None


def _ours(name: str, t: torch.Tensor) -> torch.Tensor:
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


def load_peft_adapter_zip(data: bytes, *, d: int, k: int, max_bytes: int = MAX_ADAPTER_BYTES) -> LoadedAdapter:
    """Read a zipped PEFT LoRA adapter for one d×k matrix; any bad input raises ValueError naming the problem.

    Accepts what :func:`adapter_zip_bytes` writes and what PEFT's ``save_pretrained`` writes, zipped flat or
    inside one folder. Only safetensors is read (never a pickle). The file may be at most ``max_bytes``;
    inside it, the config at most CONFIG_MAX_BYTES and the weights at most :func:`weights_max_bytes` for
    this d, k and the config's r, each checked while inflating, so a zip bomb is refused after reading
    no more than those caps. Values must be finite and within ±VALUE_LIMIT.
    """
    _check_load_args(data, d, k, max_bytes)
    data = bytes(data) if not isinstance(data, bytes) else data
    with _open_zip(data) as zf:
        _check_declared_sizes(zf, max_bytes)
        infos = [info for info in zf.infolist() if not info.is_dir()]
    names = [info.filename for info in infos]
    _refuse_pickles(names)
    config_name, weights_name = _find_adapter(names)
    by_name = {info.filename: info for info in infos}
    config = _parse_config(_Entry(data, by_name[config_name], CONFIG_MAX_BYTES).read_all())
    r, alpha, rslora = _config_hyperparams(config, d, k)
    weights = _Entry(data, by_name[weights_name], weights_max_bytes(d, k, r))
    module, blob = _read_weights(weights, d, k, r)
    tensors = _parse_weights(blob)
    lora_A, lora_B = tensors[peft_key(module, "lora_A")], tensors[peft_key(module, "lora_B")]
    # back to our orientation: A = lora_A.weightᵀ (d×r), B = lora_B.weightᵀ (r×k)
    A, B = _ours("lora_A.weight", lora_A), _ours("lora_B.weight", lora_B)
    return LoadedAdapter(A, B, r, alpha, rslora, module, lora_scaling(alpha, r, rslora))
