"""PEFT adapter files for one adapted matrix: export our A, B as a LoRA adapter, and read one back safely."""
from __future__ import annotations

import io
import json
import math
import re
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .lora import lora_scaling

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
MAX_ADAPTER_BYTES = 50 * 1024 * 1024  # far above any adapter of this app, far below a memory problem

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


def _peft_tensors(A, B, target_module: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    # peft stores the transposes: lora_A.weight = Aᵀ (r×d), lora_B.weight = Bᵀ (k×r)
    tensors = {
        peft_key(target_module, "lora_A"): A.detach().to("cpu", dtype).T.contiguous(),
        peft_key(target_module, "lora_B"): B.detach().to("cpu", dtype).T.contiguous(),
    }
    for key, t in tensors.items():
        # checked after the cast: a finite float64 can overflow to inf in float16
        if not torch.isfinite(t).all():
            raise ValueError(f"{key.removeprefix(KEY_PREFIX)} has non-finite values (NaN or inf) in {dtype}")
    return tensors


def _peft_config(r: int, alpha: float, target_module: str, rslora: bool) -> dict:
    """The fields ``LoraConfig.save_pretrained`` writes that matter for loading one plain LoRA module."""
    return {
        "peft_type": "LORA",
        "task_type": None,
        "base_model_name_or_path": None,
        "revision": None,
        "inference_mode": True,
        "r": r,
        "lora_alpha": alpha,
        "use_rslora": rslora,
        "target_modules": [target_module],
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


def _adapter_files(A, B, *, r, alpha, target_module, rslora, dtype) -> dict[str, bytes]:
    _check_export_args(A, B, r, alpha, target_module, rslora, dtype)
    weights = save_safetensors(_peft_tensors(A, B, target_module, dtype), metadata={"format": "pt"})
    config = json.dumps(_peft_config(r, alpha, target_module, rslora), indent=2, sort_keys=True)
    return {CONFIG_NAME: config.encode(), WEIGHTS_NAME: weights}


def export_peft_adapter(path, A: torch.Tensor, B: torch.Tensor, *, r: int, alpha: float,
                        target_module: str = "q_proj", rslora: bool = False,
                        dtype: torch.dtype = torch.float32) -> Path:
    """Write a directory that ``PeftModel.from_pretrained(model, path)`` loads onto ``model.<target_module>``."""
    files = _adapter_files(A, B, r=r, alpha=alpha, target_module=target_module, rslora=rslora, dtype=dtype)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    for name, blob in files.items():
        (out / name).write_bytes(blob)
    return out


def adapter_zip_bytes(A: torch.Tensor, B: torch.Tensor, *, r: int, alpha: float,
                      target_module: str = "q_proj", rslora: bool = False,
                      dtype: torch.dtype = torch.float32) -> bytes:
    """The same two files as :func:`export_peft_adapter`, zipped in memory (for a download button)."""
    files = _adapter_files(A, B, r=r, alpha=alpha, target_module=target_module, rslora=rslora, dtype=dtype)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, blob in files.items():
            zf.writestr(zipfile.ZipInfo(name, _ZIP_TIME), blob, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


# --- import -------------------------------------------------------------------------------

# everything a damaged or hostile zip can make zipfile/zlib raise
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError,
               RuntimeError, NotImplementedError, KeyError, ValueError, OverflowError)


def _check_load_args(data, d, k, max_bytes) -> None:
    for name, v in (("d", d), ("k", k), ("max_bytes", max_bytes)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"the adapter must be given as bytes, got {type(data).__name__}")
    # checked before opening, so a huge upload is never parsed at all
    if len(data) > max_bytes:
        raise ValueError(f"the file is {len(data):,} bytes, over the limit of {max_bytes:,} bytes")
    if len(data) == 0:
        raise ValueError("the file is empty; upload a .zip holding adapter_config.json and adapter_model.safetensors")


def _open_zip(data) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(bytes(data)))
    except _ZIP_ERRORS as exc:
        raise ValueError(f"the file is not a zip archive ({exc})") from None


def _check_declared_sizes(zf: zipfile.ZipFile, max_bytes: int) -> None:
    # a zip bomb is small on the wire and huge inflated: refuse by the sizes the archive declares
    total = sum(info.file_size for info in zf.infolist())
    if total > max_bytes:
        raise ValueError(f"the zip declares {total:,} bytes uncompressed, over the limit of {max_bytes:,} bytes")


def _refuse_pickles(names: list[str]) -> None:
    pickles = [n for n in names if n.lower().endswith(_PICKLE_SUFFIXES)]
    if pickles:
        raise ValueError(f"the zip holds {', '.join(pickles)}: only safetensors is accepted, never a pickle "
                         f"(save with safe_serialization=True)")


def _find_adapter(names: list[str]) -> tuple[str, str]:
    """Paths of the config and the weights, at the zip's top level or inside one folder."""
    shallow = [n for n in names if n.count("/") <= 1]
    configs = [n for n in shallow if n.rsplit("/", 1)[-1] == CONFIG_NAME]
    if not configs:
        raise ValueError(f"the zip has no {CONFIG_NAME} (looked at its top level and inside one folder)")
    if len(configs) > 1:
        raise ValueError(f"the zip holds {len(configs)} adapters ({', '.join(configs)}); upload one")
    weights = configs[0][: -len(CONFIG_NAME)] + WEIGHTS_NAME
    if weights not in names:
        raise ValueError(f"the zip has no {WEIGHTS_NAME} beside {configs[0]}")
    return configs[0], weights


def _read_member(zf: zipfile.ZipFile, name: str, max_bytes: int) -> bytes:
    try:
        with zf.open(name) as f:
            # the declared size may lie: never inflate more than the limit
            blob = f.read(max_bytes + 1)
    except _ZIP_ERRORS as exc:
        raise ValueError(f"{name} could not be read from the zip ({exc})") from None
    if len(blob) > max_bytes:
        raise ValueError(f"{name} inflates past the limit of {max_bytes:,} bytes")
    return blob


def _parse_config(blob: bytes) -> dict:
    try:
        config = json.loads(blob.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{CONFIG_NAME} is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{CONFIG_NAME} must hold a JSON object, got {type(config).__name__}")
    return config


def _config_hyperparams(config: dict) -> tuple[int, float, bool]:
    """r, lora_alpha and use_rslora from a LoRA config, refusing what one plain A·B cannot represent."""
    if config.get("peft_type") != "LORA":
        raise ValueError(f"peft_type is {config.get('peft_type')!r}; only 'LORA' adapters are accepted")
    for field in ("r", "lora_alpha"):
        if field not in config:
            raise ValueError(f"{CONFIG_NAME} has no {field!r}")
    r, alpha, rslora = config["r"], config["lora_alpha"], config.get("use_rslora", False)
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"r in {CONFIG_NAME} must be a positive integer, got {r!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"lora_alpha in {CONFIG_NAME} must be a finite number > 0, got {alpha!r}")
    if not isinstance(rslora, bool):
        raise ValueError(f"use_rslora in {CONFIG_NAME} must be true or false, got {rslora!r}")
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


def _parse_weights(blob: bytes) -> dict[str, torch.Tensor]:
    try:
        # safetensors is a JSON header plus raw numbers: parsing it cannot run code, unlike torch.load
        return load_safetensors(blob)
    except Exception as exc:  # noqa: BLE001 - a foreign parser on untrusted bytes; report any failure as bad input
        raise ValueError(f"{WEIGHTS_NAME} is not a valid safetensors file ({exc})") from None


def _split_keys(tensors: dict[str, torch.Tensor]) -> tuple[str, torch.Tensor, torch.Tensor]:
    """The one adapted module's path and its lora_A.weight, lora_B.weight; anything else is refused."""
    unexpected = sorted(key for key in tensors if not _KEY_RE.match(key))
    if unexpected:
        raise ValueError(f"{WEIGHTS_NAME} has unexpected keys {unexpected}; "
                         f"only {KEY_PREFIX}<module>.lora_A.weight and .lora_B.weight are accepted")
    modules = sorted({_KEY_RE.match(key)["module"] for key in tensors})
    if not modules:
        raise ValueError(f"{WEIGHTS_NAME} holds no lora_A.weight or lora_B.weight")
    if len(modules) > 1:
        raise ValueError(f"the adapter adapts {len(modules)} modules ({', '.join(modules)}); "
                         f"only one adapted module is accepted")
    module = modules[0]
    parts = []
    for part in ("lora_A", "lora_B"):
        key = peft_key(module, part)
        if key not in tensors:
            raise ValueError(f"{WEIGHTS_NAME} is missing {part}.weight (expected the key {key})")
        parts.append(tensors[key])
    return module, parts[0], parts[1]


def _shape(t: torch.Tensor) -> str:
    return "×".join(str(n) for n in t.shape)


def _check_tensors(lora_A: torch.Tensor, lora_B: torch.Tensor, d: int, k: int, r: int) -> None:
    """PEFT's layout against our W_Q (d×k): lora_A.weight is r×d and lora_B.weight is k×r."""
    for name, t in (("lora_A.weight", lora_A), ("lora_B.weight", lora_B)):
        if t.dim() != 2:
            raise ValueError(f"{name} has {t.dim()} dimensions ({_shape(t)}); it must be a matrix")
        if not t.is_floating_point():
            raise ValueError(f"{name} is {t.dtype}; only floating-point weights are accepted")
    if lora_A.shape[1] != d:
        raise ValueError(f"lora_A.weight is {_shape(lora_A)} but this W_Q needs r×{d}")
    if lora_B.shape[0] != k:
        raise ValueError(f"lora_B.weight is {_shape(lora_B)} but this W_Q needs {k}×r")
    if lora_A.shape[0] != lora_B.shape[1]:
        raise ValueError(f"lora_A.weight has rank {lora_A.shape[0]} but lora_B.weight has rank {lora_B.shape[1]}")
    if lora_A.shape[0] != r:
        raise ValueError(f"{CONFIG_NAME} says r={r} but the weights have rank {lora_A.shape[0]}")


def _ours(name: str, t: torch.Tensor) -> torch.Tensor:
    """float64 and transposed back to our orientation; checked after the cast, which every float dtype allows."""
    out = t.to(torch.float64).T.contiguous()
    if not torch.isfinite(out).all():
        raise ValueError(f"{name} has non-finite values (NaN or inf)")
    return out


def load_peft_adapter_zip(data: bytes, *, d: int, k: int, max_bytes: int = MAX_ADAPTER_BYTES) -> LoadedAdapter:
    """Read a zipped PEFT LoRA adapter for one d×k matrix; any bad input raises ValueError naming the problem.

    Accepts what :func:`adapter_zip_bytes` writes and what PEFT's ``save_pretrained`` writes, zipped flat or
    inside one folder. Only safetensors is read (never a pickle), and sizes are capped at ``max_bytes``.
    """
    _check_load_args(data, d, k, max_bytes)
    with _open_zip(data) as zf:
        _check_declared_sizes(zf, max_bytes)
        names = [info.filename for info in zf.infolist() if not info.is_dir()]
        _refuse_pickles(names)
        config_name, weights_name = _find_adapter(names)
        r, alpha, rslora = _config_hyperparams(_parse_config(_read_member(zf, config_name, max_bytes)))
        tensors = _parse_weights(_read_member(zf, weights_name, max_bytes))
    module, lora_A, lora_B = _split_keys(tensors)
    _check_tensors(lora_A, lora_B, d, k, r)
    # back to our orientation: A = lora_A.weightᵀ (d×r), B = lora_B.weightᵀ (r×k)
    A, B = _ours("lora_A.weight", lora_A), _ours("lora_B.weight", lora_B)
    return LoadedAdapter(A, B, r, alpha, rslora, module, lora_scaling(alpha, r, rslora))
