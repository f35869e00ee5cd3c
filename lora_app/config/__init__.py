"""Frozen configs built from widgets and the URL, validated on the server. Plain Python, no streamlit.

One module per page; widget limits are enforced only in the browser, so every value is checked here.
"""
from .explore import *  # noqa: F401,F403
from .explore import _as_float, _as_int, _format  # noqa: F401
from .training import INITS, MAX_TRAIN_STEPS, STAGES, TRAINING_DEFAULTS, TrainingConfig, sanitize_training  # noqa: F401
from . import attention, rank, scale  # noqa: F401,E402  (the Attention, Rank and Scale pages)
from . import present  # noqa: F401,E402  (the Present page)
from . import real  # noqa: F401,E402  (the Real model page)
