"""Cached calls into the core, one module per page (device: the app-wide device). Keys are frozen configs, never tensors."""
from . import attention, family, gpu, rank, real, scale  # the pages' calls (gpu: Scale's which-GPU part)
from .device import DeviceChoice, device_choice
from .explore import ColourRanges, ExploreArrays, colour_ranges, explore_arrays
from .training import TrainingRun, max_steps_for, numbers_per_step, training_run

__all__ = [
    "ColourRanges", "DeviceChoice", "ExploreArrays", "TrainingRun", "attention", "colour_ranges", "device_choice",
    "explore_arrays", "family", "gpu", "max_steps_for", "numbers_per_step", "rank", "real", "scale", "training_run",
]
