"""Cached calls into the core, one module per page (device: the app-wide device). Keys are frozen configs, never tensors."""
from . import attention, family, rank, real, scale  # the Attention, Family, Rank, Real model and Scale pages
from .device import DeviceChoice, device_choice
from .explore import ColourRanges, ExploreArrays, colour_ranges, explore_arrays
from .training import TrainingRun, max_steps_for, numbers_per_step, training_run

__all__ = [
    "ColourRanges", "DeviceChoice", "ExploreArrays", "TrainingRun", "attention", "family", "colour_ranges", "device_choice",
    "explore_arrays", "max_steps_for", "numbers_per_step", "rank", "real", "scale", "training_run",
]
