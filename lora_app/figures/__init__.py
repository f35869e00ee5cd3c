"""Pure figure builders: numpy arrays in, ``go.Figure`` out; no streamlit anywhere in this package.

``base`` holds the shared colour scale, fonts, formats and contrast, ``sizes`` the cell sizes of a figure row,
and ``heatmap`` the matrix heatmap; each page's own figures live in a module named after the page, and
everything is re-exported here so pages write ``figures.name``.
"""
from . import adapters, attention, family, rank, real, scale  # noqa: F401 - re-exported: each page's figures
from .base import *  # noqa: F403 - re-exported: the shared look is the package's own API (figures.FONT, figures.symmetric_range)
from .heatmap import matrix_heatmap, numbers_note  # noqa: F401 - re-exported: every page draws figures.matrix_heatmap
from .sizes import *  # noqa: F403 - re-exported: pages and slides lay rows out with figures.row_layout
from .training import FULL_COLOUR, LORA_COLOUR, loss_curve  # noqa: F401 - re-exported: the Training page's curve
