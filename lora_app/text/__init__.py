"""The app's own explanatory text, one module per page. The seed gives facts and numbers; the words are ours."""
from . import (  # noqa: F401  (the Attention, Rank and Scale pages)
    adapters,
    attention,
    family,
    present,
    rank,
    real,
    scale,
    training,
)
from .explore import *  # noqa: F403 - Explore's words are the package's own: text.EXPLORE_INTRO
