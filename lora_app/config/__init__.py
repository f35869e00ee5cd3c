"""Frozen configs built from widgets and the URL, validated on the server. Plain Python, no streamlit.

One module per page, each with a table of its fields (``fields.py`` reads every table the same way);
widget limits are enforced only in the browser, so every value is checked here.
"""
from . import attention, family, present, rank, real, scale  # noqa: F401 - the Attention, Family, Present, Rank, Scale and Real pages
from .explore import *  # noqa: F403 - the Explore page's names are the package's (its __all__)
from .training import INITS, MAX_TRAIN_STEPS, STAGES, TRAINING_DEFAULTS, TrainingConfig, sanitize_training  # noqa: F401 - re-exported
