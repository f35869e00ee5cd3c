"""Reading a PEFT LoRA adapter someone uploads: hostile input, bounded in memory and time whatever the file claims.

The stages, one module each: ``limits`` (the caps), ``archive`` (the zip's directory bounded before zipfile
parses it; the two entries read inflated in small steps, their declared sizes checked against the actual
ones), ``strict_json`` and ``config`` (adapter_config.json), ``weights`` (the safetensors header read and
checked, keys, dtypes, shapes and offsets, before safetensors is handed any bytes) and ``reader``, which
runs them in order. Writing adapters is :mod:`lora_core.adapter`.
"""
from .limits import (
    CENTRAL_DIRECTORY_MAX_BYTES,
    CONFIG_MAX_BYTES,
    DTYPE_BYTES,
    HEADER_MAX_BYTES,
    JSON_MAX_DEPTH,
    MAX_ADAPTER_BYTES,
    MAX_ENTRIES,
    VALUE_LIMIT,
    weights_max_bytes,
)
from .reader import LoadedAdapter, load_peft_adapter_zip

__all__ = [
    "CENTRAL_DIRECTORY_MAX_BYTES", "CONFIG_MAX_BYTES", "DTYPE_BYTES", "HEADER_MAX_BYTES", "JSON_MAX_DEPTH",
    "MAX_ADAPTER_BYTES", "MAX_ENTRIES", "VALUE_LIMIT", "LoadedAdapter", "load_peft_adapter_zip", "weights_max_bytes",
]
