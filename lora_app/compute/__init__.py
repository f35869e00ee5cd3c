"""Cached calls into the core, one module per page. Keys are frozen configs, never tensors."""
from .explore import ColourRanges, DeviceChoice, ExploreArrays, colour_ranges, device_choice, explore_arrays  # noqa: F401
from .training import TrainingRun, max_steps_for, numbers_per_step, training_run  # noqa: F401
from . import attention, rank, scale  # noqa: F401,E402  (the Attention, Rank and Scale pages)
from . import real  # noqa: F401,E402  (the Real model page)
