"""PEFT adapter files: export our A, B as a LoRA adapter, for one matrix or for many modules of a model.

The file names, the key layout and the module paths here are also what :mod:`lora_core.upload` reads back.
"""
from __future__ import annotations

import io
import json
import math
import re
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save as save_safetensors

from .checks import positive_int
from .echo import shown

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
# peft saves a top-level module `q_proj` under these keys, with the adapter name ("default") stripped
KEY_PREFIX = "base_model.model."
# a module's path in the base model: names of letters, digits and _ between dots, e.g. "layers.0.q_proj"
MODULE_PATH = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
# 1980-01-01 is the earliest zip time: fixed, so the same adapter always zips to the same bytes
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def peft_key(target_module: str, part: str) -> str:
    """The key PEFT's ``save_pretrained`` uses, e.g. ``base_model.model.q_proj.lora_A.weight``."""
    return f"{KEY_PREFIX}{target_module}.{part}.weight"


# --- export -------------------------------------------------------------------------------

def _check_export_args(A, B, r, alpha, target_module, rslora, dtype) -> None:
    positive_int("rank r", r, exact=True)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"lora_alpha must be a finite number > 0, got {alpha!r}")
    if not isinstance(rslora, bool):
        raise ValueError(f"rslora must be True or False, got {rslora!r}")
    if not isinstance(target_module, str) or not MODULE_PATH.match(target_module):
        raise ValueError(f"target_module must be a module path such as 'q_proj', got {target_module!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype!r}")
    for name, t in (("A", A), ("B", B)):
        if not isinstance(t, torch.Tensor) or t.dim() != 2:
            raise ValueError(f"{name} must be a 2-D torch tensor")
    if A.shape[1] != r or B.shape[0] != r:
        raise ValueError(f"A is {A.shape[0]}×{A.shape[1]} and B is {B.shape[0]}×{B.shape[1]}; "
                         f"with r={r} they must be d×{r} and {r}×k")


def _peft_tensors(adapters: dict, dtype: torch.dtype, magnitudes: dict | None = None) -> dict[str, torch.Tensor]:
    # peft stores the transposes: lora_A.weight = Aᵀ (r×d), lora_B.weight = Bᵀ (k×r); DoRA's m (k numbers) as
    # ``lora_magnitude_vector``, with no ``.weight`` (what save_pretrained writes)
    tensors = {}
    for module, (A, B) in adapters.items():
        tensors[peft_key(module, "lora_A")] = A.detach().to("cpu", dtype).T.contiguous()
        tensors[peft_key(module, "lora_B")] = B.detach().to("cpu", dtype).T.contiguous()
        if magnitudes:
            tensors[f"{KEY_PREFIX}{module}.lora_magnitude_vector"] = magnitudes[module].detach().to("cpu", dtype).contiguous()
    for key, t in tensors.items():
        # checked after the cast: a finite float64 can overflow to inf in float16
        if not torch.isfinite(t).all():
            raise ValueError(f"{key.removeprefix(KEY_PREFIX)} has non-finite values (NaN or inf) in {dtype}")
    return tensors


def _peft_config(r: int, alpha: float, target_modules: list[str], rslora: bool, dora: bool = False) -> dict:
    """The fields ``LoraConfig.save_pretrained`` writes that matter for loading LoRA (or DoRA) modules."""
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
        "use_dora": dora,
        "fan_in_fan_out": False,
        # only decides the starting values, which the saved weights then replace
        "init_lora_weights": True,
        "modules_to_save": None,
        "layers_to_transform": None,
        "layers_pattern": None,
        "rank_pattern": {},
        "alpha_pattern": {},
    }


def _files(adapters: dict, *, r, alpha, rslora, dtype, magnitudes: dict | None = None) -> dict[str, bytes]:
    """The two files of an adapter whose inputs were checked; ``adapters`` maps module path → (A, B), and
    ``magnitudes`` (DoRA) module path → m."""
    weights = save_safetensors(_peft_tensors(adapters, dtype, magnitudes), metadata={"format": "pt"})
    config = json.dumps(_peft_config(r, alpha, list(adapters), rslora, bool(magnitudes)), indent=2, sort_keys=True)
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
        if not isinstance(module, str) or not MODULE_PATH.match(module):
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


def _check_magnitudes(magnitudes, adapters: dict) -> dict | None:
    """DoRA's m for every module and no other, each a 1-D tensor with one number per output (B's columns)."""
    if not magnitudes:
        return None
    if not isinstance(magnitudes, dict) or set(magnitudes) != set(adapters):
        raise ValueError("DoRA needs a magnitude for every adapted module and for no other")
    for module, m in magnitudes.items():
        k = adapters[module][1].shape[1]
        if not isinstance(m, torch.Tensor) or m.shape != (k,) or not m.dtype.is_floating_point:
            raise ValueError(f"{module}: DoRA's magnitude must be {k} floating-point numbers, one per output")
    return {module: magnitudes[module] for module in adapters}


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
                         rslora: bool = False, dtype: torch.dtype = torch.float32, magnitudes: dict | None = None) -> Path:
    """Write one PEFT adapter for many modules, e.g. ``{"layers.0.q_proj": (A, B), …}`` with A d_in×r, B r×d_out.

    ``target_modules`` lists the full module paths, so ``PeftModel.from_pretrained(model, path)`` adapts
    exactly those modules of ``model``; every module shares one r and one lora_alpha, as PEFT's config does.
    With ``magnitudes`` (module path → m, one number per output) it is a DoRA adapter (``use_dora: true``).
    """
    checked = _check_many(adapters, r, alpha, rslora, dtype)
    mags = _check_magnitudes(magnitudes, checked)
    return _write_folder(path, _files(checked, r=r, alpha=alpha, rslora=rslora, dtype=dtype, magnitudes=mags))


def adapters_zip_bytes(adapters: dict[str, tuple[torch.Tensor, torch.Tensor]], *, r: int, alpha: float,
                       rslora: bool = False, dtype: torch.dtype = torch.float32, magnitudes: dict | None = None) -> bytes:
    """The same two files as :func:`export_peft_adapters`, zipped in memory (for a download button)."""
    checked = _check_many(adapters, r, alpha, rslora, dtype)
    mags = _check_magnitudes(magnitudes, checked)
    return _zip(_files(checked, r=r, alpha=alpha, rslora=rslora, dtype=dtype, magnitudes=mags))
