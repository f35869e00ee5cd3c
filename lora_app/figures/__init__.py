"""Pure figure builders: numpy arrays in, ``go.Figure`` out; no streamlit anywhere in this package.

``base`` holds the shared colour scale, fonts and formats, ``sizes`` the cell sizes of a figure row, and
``heatmap`` the matrix heatmap; each page's own figures live in a module named after the page, and
everything is re-exported here so pages write ``figures.name``.
"""
from .base import *  # noqa: F401,F403
from .base import block_means, display_decimals, shape_label, symmetric_range  # noqa: F401
from .sizes import *  # noqa: F401,F403
from .sizes import natural_cell, row_layout  # noqa: F401
from .heatmap import matrix_heatmap, numbers_note  # noqa: F401
from .training import LORA_COLOUR, FULL_COLOUR, loss_curve  # noqa: F401
from . import attention, rank, scale  # noqa: F401,E402  (the Attention, Rank and Scale pages)
from . import real  # noqa: F401,E402  (the Real model page)
