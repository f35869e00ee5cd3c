"""Where every page's tensors run: the app-wide device choice, and results brought back from it as numpy for display."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import streamlit as st
import torch

from lora_core import describe_device, pick_device


class DeviceChoice(NamedTuple):
    device: torch.device
    label: str
    problem: str | None  # why the requested device was not used, if it was not


@st.cache_resource(max_entries=1, show_spinner=False)
def device_choice() -> DeviceChoice:
    # cache_resource is shared by all sessions: this tuple is immutable, so that is safe
    try:
        device = pick_device()
        return DeviceChoice(device, describe_device(device), None)
    except ValueError as err:
        return DeviceChoice(torch.device("cpu"), "CPU", str(err))


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A tensor on any device as a float64 numpy array on the CPU, what the figures draw."""
    return t.detach().to("cpu", torch.float64).numpy()
