"""Numbers the server reads from its environment (rates, caps, slots), read so that a bad one cannot stop the app.

A setting is typed by whoever starts the server, in a shell, a compose file or a unit file. Text,
NaN, infinity or a negative number there would otherwise raise at import, or slip through and turn a
rate into NaN, and every page would fail. :func:`number` gives the default instead and logs a warning
that names the variable and echoes what it held (repr, shortened), so the mistake can be found.
"""
from __future__ import annotations

import logging
import math
import os

_LOGGER = logging.getLogger(__name__)
_ECHO_CHARS = 40


def number(name: str, default: float, *, integer: bool = False) -> float | int:
    """``os.environ[name]`` as a finite number ≥ 0 (an int if ``integer``), or ``default`` with a warning."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw.strip())
        if not math.isfinite(value) or value < 0 or (integer and value != int(value)):
            raise ValueError
    except ValueError:
        shown = raw if len(raw) <= _ECHO_CHARS else raw[:_ECHO_CHARS] + "…"
        kind = "a whole number" if integer else "a number"
        _LOGGER.warning("%s=%r is not %s ≥ 0; using %s", name, shown, kind, default)
        return default
    return int(value) if integer else value
