"""Whole adapters that cannot exhaust the server (lora_core.upload.many at its 512 MB sizes): each hostile file is
read in a fresh process (tests/reader_memory.py), refused with a ValueError that names the problem, quickly, and with
its peak memory bounded; and a good many-module adapter is read within its file's size plus 256 MB."""
from __future__ import annotations

import io
import json
import re
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from reader_memory import llama_shaped, measure, zipped
from safetensors.torch import save as save_safetensors

PEAK_LIMIT_MB = 50
CONFIG = json.dumps({"peft_type": "LORA", "r": 2, "lora_alpha": 4}).encode()
KEY = "base_model.model.layers.0.q_proj"


def _zip(files: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _weights(header: dict, data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _declares(size: int) -> bytes:
    """A zip whose weights entry declares ``size`` bytes uncompressed (its data is a few bytes)."""
    blob = bytearray(_zip({"adapter_config.json": CONFIG, "adapter_model.safetensors": b"x" * 10},
                          zipfile.ZIP_STORED))
    at = blob.find(b"PK\x01\x02", 0)
    at = blob.find(b"PK\x01\x02", at + 4)  # the weights' central record
    struct.pack_into("<I", blob, at + 24, size)
    return bytes(blob)


def _zeros_bomb(size: int) -> bytes:
    """Deflated zeros inflating to ``size`` bytes, declared honestly: about 600 kB on the wire."""
    buf = io.BytesIO()
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("adapter_config.json", CONFIG)
        with zf.open("adapter_model.safetensors", "w", force_zip64=True) as f:
            for _ in range(size >> 20):
                f.write(chunk)
    return buf.getvalue()


BOMBS = {
    "an entry declaring 600 MB": (lambda: _declares(600 << 20), r"declares .* over the limit"),
    "zeros inflating to 600 MB": (lambda: _zeros_bomb(600 << 20), r"over the limit"),
    "a header length of 1 TB": (lambda: _zip({"adapter_config.json": CONFIG,
                                              "adapter_model.safetensors": struct.pack("<Q", 1 << 40) + b"{}"}),
                                r"header is .* over the limit"),
    "a header of 30,000 tensors": (lambda: _zip({"adapter_config.json": CONFIG, "adapter_model.safetensors": _weights(
        {f"t{i}": {"dtype": "F16", "shape": [0], "data_offsets": [0, 0]} for i in range(30_000)})}),
        r"holds 30,000 tensors; at most 24,576"),
    "a tensor of 68 GB in a small file": (lambda: _zip({"adapter_config.json": CONFIG, "adapter_model.safetensors":
        _weights({f"{KEY}.lora_A.weight": {"dtype": "BF16", "shape": [16, 2**31 - 1],
                                           "data_offsets": [0, 32 * (2**31 - 1)]}}, b"\0" * 64)}),
        r"header describes .* but the file holds"),
    "8,500 modules": (lambda: _zip({"adapter_config.json": CONFIG, "adapter_model.safetensors": save_safetensors(
        {f"base_model.model.m{i}.lora_A.weight": torch.zeros(2, 1) for i in range(8500)}
        | {f"base_model.model.m{i}.lora_B.weight": torch.zeros(1, 2) for i in range(8500)})}),
        r"adapts 8,500 modules; at most 8,192"),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_hostile_adapter_is_refused_quickly_in_bounded_memory(tmp_path, name):
    make, words = BOMBS[name]
    path = tmp_path / "upload.zip"
    path.write_bytes(make())
    result = measure(path)
    print(name, result)
    assert result["error"] is not None, result
    assert re.search(words, result["error"]), result["error"]
    assert result["peak_mb"] < PEAK_LIMIT_MB, result
    assert result["seconds"] < 2.0, result


def test_a_many_module_adapter_reads_within_its_size_plus_256_mb_and_its_peak_does_not_grow_with_it(tmp_path):
    """Llama-2-7B-shaped layers at r = 16 in bfloat16, 4 of them (10 MB) and 16 (40 MB): every module read, the peak
    above the held upload within the file's size plus 256 MB, and no higher for the file four times the size: the
    reader holds one module at a time."""
    peaks = {}
    for layers in (4, 16):
        folder = llama_shaped(tmp_path / f"l{layers}", layers=layers, r=16)
        z = zipped(folder, tmp_path / f"l{layers}.zip")
        size_mb = sum(p.stat().st_size for p in Path(folder).iterdir()) / 1e6
        result = measure(z)
        print(layers, size_mb, result)
        assert result["error"] is None and result["modules"] == 7 * layers, result
        assert result["peak_mb"] < size_mb + 256, result
        peaks[layers] = (result["peak_mb"], size_mb)
    (small, small_mb), (big, big_mb) = peaks[4], peaks[16]
    assert big < small + (big_mb - small_mb) / 3, peaks
