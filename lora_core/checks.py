"""Whole-number checks the core shares: one rule for what counts as a rank, a size, a step or a seed.

``True`` is an ``int`` in Python; it must never pass as r = 1, so every check refuses a bool first.
"""
from __future__ import annotations

import math
import numbers

from .echo import shown


def is_whole(v: object, lo: int, hi: int | None = None, *, exact: bool = False) -> bool:
    """Whether ``v`` is a whole number in lo…hi (no upper bound when ``hi`` is None).

    ``exact``: only an ``int`` passes, as where a file or a settings object must hold one (JSON's 4.0 is
    not a rank). Otherwise any whole real passes too: 4.0, numpy's int64.
    """
    if isinstance(v, bool):
        return False
    if exact:
        whole = isinstance(v, int)
    else:
        # NaN and ±inf are refused before int() sees them (int(nan) and int(inf) raise messages of their own)
        whole = isinstance(v, numbers.Real) and math.isfinite(v) and int(v) == v
    return whole and lo <= v and (hi is None or v <= hi)


def positive_int(name: str, v: object, *, exact: bool = False) -> int:
    """``v`` as an int ≥ 1, or ValueError "<name> must be a positive integer, got <v>" (see :func:`is_whole`)."""
    if not is_whole(v, 1, exact=exact):
        raise ValueError(f"{name} must be a positive integer, got {shown(repr(v))}")
    return int(v)
