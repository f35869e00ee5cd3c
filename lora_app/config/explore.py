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

from ..echo import echo, quoted  # noqa: F401  (re-exported: every page's config quotes URL values with it)

DIM_CHOICES = (*range(1, 17), 20, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
ALPHA_MIN, ALPHA_MAX, ALPHA_STEP = 0.5, 64.0, 0.5
SEED_MAX = 2**31 - 1
CELL_LIMIT = VALUE_LIMIT  # an edited entry larger than this is refused (so is an adapter's weight): it only blows up the colour scale
MATRIX_LABELS = {"X": "X", "W": "W_Q", "A": "A_Q", "B": "B_Q"}

DEFAULTS = {"preset": "seed", "seed": 0, "n": 3, "d": 5, "k": 3, "r": 2, "alpha": 2.0, "rslora": False}
URL_KEYS = tuple(DEFAULTS)


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
        return {key: _format(getattr(self, key)) for key in URL_KEYS}


def _format(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _as_int(raw) -> int:
    if isinstance(raw, bool):
        raise ValueError
    if isinstance(raw, (int, float)):
        if not math.isfinite(raw) or int(raw) != raw:
            raise ValueError
        return int(raw)
    return int(str(raw).strip())


def _as_float(raw) -> float:
    value = float(str(raw).strip()) if isinstance(raw, str) else float(raw)
    if not math.isfinite(value):
        raise ValueError
    return value


def snap(value: float, lo: float, hi: float, step: float) -> float:
    """The grid point of a slider (lo…hi in steps of step) nearest to value."""
    return round(round((min(max(value, lo), hi) - lo) / step) * step + lo, 10)


def _nearest(value: int, choices) -> int:
    return min(choices, key=lambda c: (abs(c - value), c))


def sanitize(raw: dict) -> tuple[dict, list[str]]:
    """Turn raw values (from the URL or from widgets) into valid ones, with a notice for every change.

    Missing keys take their defaults silently; present but invalid ones are reported by name.
    """
    out, notices = dict(DEFAULTS), []

    def refuse(key, why):
        notices.append(f"{quoted(key, raw[key])} {why}; using {key}={_format(out[key])}.")

    if "preset" in raw:
        value = str(raw["preset"]).strip().lower()
        if value in PRESETS:
            out["preset"] = value
        else:
            refuse("preset", f"is not a preset (choose {', '.join(PRESETS)})")
    if "seed" in raw:
        try:
            seed = _as_int(raw["seed"])
            out["seed"] = min(max(seed, 0), SEED_MAX)
            if out["seed"] != seed:
                refuse("seed", f"is outside 0…{SEED_MAX}")
        except (TypeError, ValueError):
            refuse("seed", "is not a whole number")
    for key, choices in (("n", range(1, MAX_N + 1)), ("d", DIM_CHOICES), ("k", DIM_CHOICES)):
        if key not in raw:
            continue
        try:
            value = _as_int(raw[key])
            out[key] = _nearest(value, choices)
            if out[key] != value:
                refuse(key, f"is not an offered size ({choices[0]}…{choices[-1]})")
        except (TypeError, ValueError):
            refuse(key, "is not a whole number")
    r_max = min(out["d"], out["k"])
    if "r" in raw:
        try:
            value = _as_int(raw["r"])
            out["r"] = min(max(value, 1), r_max)
            if out["r"] != value:
                refuse("r", f"is outside 1…min(d, k) = {r_max}")
        except (TypeError, ValueError):
            refuse("r", "is not a whole number")
    out["r"] = min(out["r"], r_max)  # the default rank 2 does not fit when d or k is 1
    if "alpha" in raw:
        try:
            value = _as_float(raw["alpha"])
            snapped = snap(value, ALPHA_MIN, ALPHA_MAX, ALPHA_STEP)
            out["alpha"] = snapped
            if snapped != value:
                refuse("alpha", f"is not a multiple of {ALPHA_STEP} in {ALPHA_MIN}…{ALPHA_MAX}")
        except (TypeError, ValueError, OverflowError):
            refuse("alpha", "is not a finite number")
    if "rslora" in raw:
        value = str(raw["rslora"]).strip().lower()
        if value in ("1", "true", "yes", "on"):
            out["rslora"] = True
        elif value in ("0", "false", "no", "off"):
            out["rslora"] = False
        else:
            refuse("rslora", "is not 0 or 1")
    return out, notices


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
