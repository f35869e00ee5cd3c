"""Reading one matrix's PEFT LoRA adapter from an uploaded zip: every stage bounded, any bad input a ValueError."""
from __future__ import annotations

from typing import NamedTuple

import torch

from ..adapter import KEY_PREFIX, peft_key
from ..checks import positive_int
from ..lora import lora_scaling
from .archive import ZipEntry, check_declared_sizes, find_adapter, open_zip, refuse_pickles
from .config import config_hyperparams, parse_config
from .limits import CONFIG_MAX_BYTES, MAX_ADAPTER_BYTES, weights_max_bytes
from .weights import MAGNITUDE, magnitude_values, parse_weights, read_weights, to_our_orientation


class LoadedAdapter(NamedTuple):
    A: torch.Tensor      # d×r float64, our orientation (lora_A.weight transposed)
    B: torch.Tensor      # r×k float64, our orientation (lora_B.weight transposed)
    r: int               # rank, from the config and checked against the tensors
    alpha: float         # lora_alpha
    rslora: bool         # use_rslora: s = α/√r instead of α/r
    target_module: str   # the adapted module's path in the base model, e.g. "q_proj"
    scaling: float       # s, as PEFT computes it
    magnitude: torch.Tensor | None = None  # DoRA (use_dora): m, k numbers in float64; None for plain LoRA


def _check_load_args(data, d, k, max_bytes) -> None:
    for name, v in (("d", d), ("k", k), ("max_bytes", max_bytes)):
        positive_int(name, v, exact=True)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"the adapter must be given as bytes, got {type(data).__name__}")
    # checked before opening, so a huge upload is never parsed at all
    if len(data) > max_bytes:
        raise ValueError(f"the file is {len(data):,} bytes, over the limit of {max_bytes:,} bytes")
    if len(data) == 0:
        raise ValueError("the file is empty; upload a .zip holding adapter_config.json and adapter_model.safetensors")


def load_peft_adapter_zip(data: bytes, *, d: int, k: int, max_bytes: int = MAX_ADAPTER_BYTES) -> LoadedAdapter:
    """Read a zipped PEFT LoRA (or DoRA) adapter for one d×k matrix; any bad input raises ValueError naming the problem.

    Accepts what :func:`lora_core.adapter.adapter_zip_bytes` writes and what PEFT's ``save_pretrained`` writes, zipped flat or
    inside one folder. Only safetensors is read (never a pickle). The file may be at most ``max_bytes``;
    inside it, the config at most CONFIG_MAX_BYTES and the weights at most :func:`weights_max_bytes` for
    this d, k and the config's r, each checked while inflating, so a zip bomb is refused after reading
    no more than those caps. Values must be finite and within ±VALUE_LIMIT.
    """
    _check_load_args(data, d, k, max_bytes)
    data = bytes(data) if not isinstance(data, bytes) else data
    with open_zip(data) as zf:
        check_declared_sizes(zf, max_bytes)
        infos = [info for info in zf.infolist() if not info.is_dir()]
    names = [info.filename for info in infos]
    refuse_pickles(names)
    config_name, weights_name = find_adapter(names)
    by_name = {info.filename: info for info in infos}
    config = parse_config(ZipEntry(data, by_name[config_name], CONFIG_MAX_BYTES).read_all())
    r, alpha, rslora, dora = config_hyperparams(config, d, k)
    weights = ZipEntry(data, by_name[weights_name], weights_max_bytes(d, k, r, dora))
    module, blob = read_weights(weights, d, k, r, dora)
    tensors = parse_weights(blob)
    lora_A, lora_B = tensors[peft_key(module, "lora_A")], tensors[peft_key(module, "lora_B")]
    # back to our orientation: A = lora_A.weightᵀ (d×r), B = lora_B.weightᵀ (r×k)
    A, B = to_our_orientation("lora_A.weight", lora_A), to_our_orientation("lora_B.weight", lora_B)
    m = magnitude_values(tensors[f"{KEY_PREFIX}{module}.{MAGNITUDE}"]) if dora else None
    return LoadedAdapter(A, B, r, alpha, rslora, module, lora_scaling(alpha, r, rslora), m)
