"""The Explore config: one frozen dataclass built from widgets and the URL, validated on the server.

Widget limits are enforced only in the browser, so every value is checked here again; a bad value
is clamped or dropped and a notice says what happened. No streamlit import: this is plain Python.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from lora_core import MAX_N, PRESETS, lora_scaling
from lora_core.upload import VALUE_LIMIT

from ..echo import echo, quoted
from . import fields
from .fields import BOOL, CHOICE, FLOAT, INT, NEAREST, SNAP, Field, format_value, snap

# what lora_app.config offers of this module (quoted and snap: every page's config quotes and snaps with them)
__all__ = ["ALPHA_MAX", "ALPHA_MIN", "ALPHA_STEP", "CELL_LIMIT", "CELL_TEXT_MAX", "DEFAULTS", "DIM_CHOICES",
           "MATRIX_LABELS", "SEED_MAX", "URL_KEYS", "ExploreConfig", "echo", "parse_cell", "quoted", "sanitize", "snap"]

DIM_CHOICES = (*range(1, 17), 20, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
ALPHA_MIN, ALPHA_MAX, ALPHA_STEP = 0.5, 64.0, 0.5
SEED_MAX = 2**31 - 1
# an edited entry larger than this is refused (so is an adapter's weight): it only blows up the colour scale
CELL_LIMIT = VALUE_LIMIT
MATRIX_LABELS = {"X": "X", "W": "W_Q", "A": "A_Q", "B": "B_Q"}

N_CHOICES = tuple(range(1, MAX_N + 1))


@dataclass(frozen=True)
class ExploreConfig:
    """Everything that determines the Explore page's numbers; caches are keyed on it."""
    preset: str = "seed"
    seed: int = 0
    n: int = 3       # tokens: rows of X
    d: int = 5       # input width: rows of W
    k: int = 3       # output width: columns of W
    r: int = 2       # LoRA rank
    alpha: float = 2.0
    rslora: bool = False
    edits: tuple[tuple[str, int, int, float], ...] = field(default=())  # (matrix, i, j, value), 0-based

    @property
    def scaling(self) -> float:
        return lora_scaling(self.alpha, self.r, self.rslora)

    def url_params(self) -> dict[str, str]:
        return {key: format_value(getattr(self, key)) for key in URL_KEYS}


# the sidebar's controls, in the order they are read: r's bound is min(d, k) of the d and k read before it
FIELDS = (
    Field("preset", CHOICE, "seed", choices=PRESETS, unreadable="is not a preset (choose {choices})"),
    Field("seed", INT, 0, lo=0, hi=SEED_MAX),
    *(Field(key, INT, default, choices=choices, fit=NEAREST, moved=f"is not an offered size ({choices[0]}…{choices[-1]})")
      for key, default, choices in (("n", 3, N_CHOICES), ("d", 5, DIM_CHOICES), ("k", 3, DIM_CHOICES))),
    Field("r", INT, 2, lo=1, hi=lambda v: min(v["d"], v["k"]), moved="is outside 1…min(d, k) = {hi}"),
    Field("alpha", FLOAT, 2.0, lo=ALPHA_MIN, hi=ALPHA_MAX, step=ALPHA_STEP, fit=SNAP,
          moved=f"is not a multiple of {ALPHA_STEP} in {ALPHA_MIN}…{ALPHA_MAX}"),
    Field("rslora", BOOL, False),
)
DEFAULTS = fields.defaults(FIELDS)
URL_KEYS = tuple(DEFAULTS)


def sanitize(raw: dict) -> tuple[dict, list[str]]:
    """Turn raw values (from the URL or from widgets) into valid ones, with a notice for every change.

    Missing keys take their defaults silently; present but invalid ones are reported by name.
    """
    return fields.sanitize(raw, FIELDS)


CELL_TEXT_MAX = 32  # characters of a typed entry: "-1.2345678901234567e-300" is 24
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def parse_cell(raw) -> float:
    """An edited matrix entry as a float, or ValueError saying in words what is wrong with it.

    Typed text must be a plain decimal number, optionally with an exponent: "0.25", "-1.5e-3", "2E4".
    Python's float() also takes "1_000", "inf", "١٢" and "  nan "; a cell takes none of them.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ValueError("is empty")
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise ValueError(f"is not a number (the editor sent {type(raw).__name__})")
    if isinstance(raw, str):
        text = raw.strip().replace("\u2212", "-")  # the minus sign the app prints reads as a hyphen-minus
        if len(text) > CELL_TEXT_MAX:
            raise ValueError(f"is {len(text):,} characters long, too long for a number (at most {CELL_TEXT_MAX})")
        if not _NUMBER.fullmatch(text):
            hint = "; write the decimal point as a point" if re.fullmatch(r"[+-]?[0-9]+,[0-9]+", text) else ""
            raise ValueError(f"{echo(raw, 24)} is not a number (type it like 0.25, -1.5e-3 or 2E4{hint})")
        value = float(text)
    else:
        value = float(raw)
    if math.isnan(value):
        raise ValueError("is not a number (NaN)")
    if math.isinf(value) or abs(value) > CELL_LIMIT:
        raise ValueError(f"{_magnitude(raw, value)} is larger than the limit of ±{CELL_LIMIT:g}")
    return value


def _magnitude(raw, value: float) -> str:
    if isinstance(raw, str):
        return f"{echo(raw, 24)}"  # as typed: "1e400" overflows to inf, which is not what was typed
    return "∞" if math.isinf(value) else f"{value:g}"
