"""Where the math runs: CUDA, then Apple MPS, then the CPU, unless LORA_DEVICE says otherwise."""
from __future__ import annotations

import os
from contextlib import contextmanager

import torch

_VALID = ("cpu", "cuda", "mps")


def pick_device() -> torch.device:
    """Return the device all core math runs on.

    ``LORA_DEVICE`` (cpu, cuda, cuda:1, mps) overrides the automatic choice;
    an override naming a device this machine lacks raises, so a typo is not silently ignored.
    """
    override = os.environ.get("LORA_DEVICE", "").strip().lower()
    if override:
        if override.split(":")[0] not in _VALID:
            raise ValueError(f"LORA_DEVICE={override!r} is not one of {', '.join(_VALID)}")
        device = torch.device(override)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("LORA_DEVICE asks for cuda, but torch sees no CUDA device")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError("LORA_DEVICE asks for mps, but torch sees no MPS device")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    # float64 keeps the seed's two- and three-decimal numbers exact; MPS has no float64
    return torch.float32 if device.type == "mps" else torch.float64


def describe_device(device: torch.device) -> str:
    """A short human label, e.g. 'CUDA · NVIDIA H200' or 'CPU'."""
    if device.type == "cuda":
        return f"CUDA · {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    return "CPU"


@contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` intra-op threads, then restore the count.

    The real transformer's tensors are small, and on a loaded machine OpenMP's threads mostly wait
    for each other: a held-out forward pass took 20 ms with one thread and 495 ms with two while
    the 2-core machine's load average was 6. Its calls run with one thread.
    """
    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
