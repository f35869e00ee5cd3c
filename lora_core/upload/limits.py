"""What an upload may hold. Each cap is checked while reading, so nothing past it is ever inflated."""
from __future__ import annotations

from ..example import MAX_DIM

VALUE_LIMIT = 1e6             # |w| above this is refused; lora_app.config.explore.CELL_LIMIT is the same limit
CONFIG_MAX_BYTES = 64 * 1024  # PEFT 0.21 writes 1.1 kB of config
HEADER_MAX_BYTES = 64 * 1024  # the safetensors JSON header: PEFT's is 224 bytes for one module
JSON_MAX_DEPTH = 32           # PEFT's config nests 2 levels; a deeper one is refused before json.loads sees it
MAX_ENTRIES = 64              # PEFT's folder has 3 files; macOS's zips can add a __MACOSX/ twin for each
CENTRAL_DIRECTORY_MAX_BYTES = 64 * 1024  # zipfile builds an object per record: bound them before it reads any
DTYPE_BYTES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}  # safetensors' names of the accepted float dtypes
_MIB = 1024 * 1024


def weights_max_bytes(d: int, k: int, r: int | None = None, dora: bool = False) -> int:
    """The largest adapter_model.safetensors for a d×k matrix: lora_A (r×d) and lora_B (k×r) in the widest
    accepted dtype, at rank ``r`` (by default the largest, min(d, k)), plus the 8-byte length and the header;
    DoRA's magnitude adds k numbers."""
    r = min(d, k) if r is None else r
    return 8 + HEADER_MAX_BYTES + max(DTYPE_BYTES.values()) * (r * (d + k) + (k if dora else 0))


# the largest upload: the config and the weights at d = k = r = MAX_DIM in float64 (16 MiB), rounded up to whole
# MiB with room for the zip's own records; .streamlit/config.toml's server.maxUploadSize is this in MiB (17)
MAX_ADAPTER_BYTES = -(-(CONFIG_MAX_BYTES + weights_max_bytes(MAX_DIM, MAX_DIM, dora=True) + CENTRAL_DIRECTORY_MAX_BYTES
                        + 256 * 1024) // _MIB) * _MIB
