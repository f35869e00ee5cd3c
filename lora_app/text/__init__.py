"""The app's own explanatory text, one module per page. The seed gives facts and numbers; the words are ours."""
from .explore import *  # noqa: F401,F403
from . import training  # noqa: F401
from . import attention, rank, scale  # noqa: F401,E402  (the Attention, Rank and Scale pages)
from . import present  # noqa: F401,E402  (the Present page)
from . import real  # noqa: F401,E402  (the Real model page)
