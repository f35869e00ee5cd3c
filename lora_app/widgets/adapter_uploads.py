"""The Adapters page's two upload slots: a zipped adapter folder, or its two files together, up to 512 MB each.

What arrives is checked for its form here (one zip, or exactly adapter_config.json and adapter_model.safetensors);
its contents are read by lora_core.upload.many with its own caps. The bytes stay in this session.
"""
from __future__ import annotations

import streamlit as st

from lora_core.adapter import CONFIG_NAME, WEIGHTS_NAME
from lora_core.echo import shown_list
from lora_core.upload.sources import MAX_UPLOAD_BYTES

MAX_MB = MAX_UPLOAD_BYTES // (1024 * 1024)


def _contents(files) -> object:
    names = [f.name for f in files]
    if any(f.size > MAX_UPLOAD_BYTES for f in files):
        raise ValueError(f"a file is over {MAX_MB} MB")
    if len(files) == 1 and names[0].lower().endswith(".zip"):
        return files[0].getvalue()
    if sorted(names) == sorted([CONFIG_NAME, WEIGHTS_NAME]):
        by = {f.name: f for f in files}
        return by[CONFIG_NAME].getvalue(), by[WEIGHTS_NAME].getvalue()
    raise ValueError(f"got {shown_list(names[:6])}: upload one .zip of the adapter folder, or exactly "
                     f"{CONFIG_NAME} and {WEIGHTS_NAME} together")


def upload_slots() -> dict[str, object]:
    """upload:1 and upload:2 → a zip's bytes or (config, weights) bytes, for the slots that hold a usable upload."""
    out = {}
    for i, col in zip((1, 2), st.columns(2)):
        files = col.file_uploader(f"Upload {i}: the adapter folder as a .zip, or its two files (up to {MAX_MB} MB)",
                                  type=["zip", "json", "safetensors"], accept_multiple_files=True,
                                  key=f"ad_upload_{i}", max_upload_size=MAX_MB)
        if not files:
            continue
        try:
            out[f"upload:{i}"] = _contents(files)
        except ValueError as e:
            col.error(f"Upload {i} was not read: {e}.", icon=":material/error:")
    return out
