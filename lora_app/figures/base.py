"""The shared look: the colour scale, role colours, fonts, number formats, the contrast of cell numbers, the template.

Matrices that are compared share one symmetric range, so equal colours mean equal values.
"""
from __future__ import annotations

import copy
import functools
import math

import numpy as np
import plotly.graph_objects as go

# ColorBrewer RdBu, reversed so negative is blue: a colour-blind-safe diverging scale centred at 0
DIVERGING = [
    [0.0, "#2166ac"], [0.2, "#67a9cf"], [0.4, "#d1e5f0"], [0.5, "#f7f7f7"],
    [0.6, "#fddbc7"], [0.8, "#ef8a62"], [1.0, "#b2182b"],
]
ROLE_COLOURS = {"frozen": "#6b7280", "trainable": "#e8590c", None: "rgba(0,0,0,0)"}
ROLE_LABELS = {"frozen": "frozen", "trainable": "trainable", None: ""}
HIGHLIGHT = "#111827"
FONT = dict(family="DejaVu Sans, Arial, sans-serif", size=15)
TEXT_MAX_SIDE = 32       # above this, per-cell numbers would be unreadable: drop them
DISPLAY_MAX_SIDE = 128   # above this, show block means so the browser gets a small image


def symmetric_range(*arrays: np.ndarray) -> float:
    """The largest |value| over all arrays: one shared, zero-centred colour range."""
    m = max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
    return m if m > 0 else 1.0


def display_decimals(*arrays: np.ndarray, max_decimals: int = 3) -> int:
    """The fewest decimals (up to ``max_decimals``) that show every value exactly."""
    for dec in range(max_decimals + 1):
        if all(np.allclose(a, np.round(a, dec), rtol=0, atol=1e-9) for a in arrays):
            return dec
    return max_decimals


def block_means(M: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> tuple[np.ndarray, int]:
    """Average b×b blocks so that no side exceeds ``max_side``; returns (means, b)."""
    b = max(1, math.ceil(max(M.shape) / max_side))
    if b == 1:
        return M, 1
    rows, cols = math.ceil(M.shape[0] / b), math.ceil(M.shape[1] / b)
    padded = np.full((rows * b, cols * b), np.nan)
    padded[: M.shape[0], : M.shape[1]] = M
    return np.nanmean(padded.reshape(rows, b, cols, b), axis=(1, 3)), b


def shape_label(M) -> str:
    """"(rows×columns)" of a matrix, or of a shape."""
    rows, cols = np.shape(M) if not isinstance(M, tuple) else M
    return f"({rows}×{cols})"


def value_format(M: np.ndarray, decimals: int | None = None) -> str:
    """A d3 format for the numbers in the cells: fixed decimals, or exponents when every value is tiny."""
    biggest = float(np.max(np.abs(M))) if M.size else 0.0
    if 0 < biggest < 1e-3:
        return ".2~e"  # AdamW's v is often 1e-6: fixed decimals would print a wall of 0.000
    return f".{display_decimals(M) if decimals is None else decimals}f"


ROLE_SWATCH = "■"


def role_subtitle(role, b: int, can_print: bool) -> str | None:
    """A matrix figure's subtitle: its role's swatch, and how its numbers are shown when not one per cell."""
    parts = []
    if role:
        parts.append(f"<span style='color:{ROLE_COLOURS[role]}'>{ROLE_SWATCH}</span> <b>{ROLE_LABELS[role]}</b>")
    if b > 1:
        parts.append(f"shown as means of {b}×{b} blocks")
    elif not can_print:
        parts.append("too large for numbers: hover to read")
    return " · ".join(parts) or None


def cell_text_colours(values: np.ndarray, zmax: float) -> list[str]:
    """Black or white for each cell's number, whichever contrasts more with that cell's colour."""
    t = np.clip((np.asarray(values, dtype=float) / (zmax or 1.0) + 1) / 2, 0, 1)
    return text_colour_on(scale_colours(t)).tolist()


def colours_at(colourscale, t) -> np.ndarray:
    """The colours of a plotly colourscale at each ``t`` in [0, 1] (0–255 RGB rows), interpolated as plotly does."""
    stops = [p for p, _ in colourscale]
    t = np.clip(np.asarray(t, dtype=float), 0, 1)
    return np.stack([np.interp(t, stops, [hex_rgb(c)[i] for _, c in colourscale]) for i in range(3)], axis=-1)


def scale_colours(t) -> np.ndarray:
    """The colours of the diverging scale at each ``t`` in [0, 1] (0–255 RGB rows)."""
    return colours_at(DIVERGING, t)


def scale_colour(t: float) -> tuple[float, float, float]:
    return tuple(float(c) for c in scale_colours(t))


def contrast(rgb1, rgb2) -> float:
    """The WCAG 2.1 contrast ratio of two sRGB colours (0–255 channels)."""
    hi, lo = sorted((float(luminance(rgb1)), float(luminance(rgb2))), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def text_colour_on(rgb) -> np.ndarray:
    """Black or white, whichever contrasts more with each colour (rows of 0–255 RGB)."""
    lum = luminance(rgb)
    # the contrast with black is (L + 0.05) / 0.05, with white 1.05 / (L + 0.05)
    return np.where((lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05), "#000000", "#ffffff")


def luminance(rgb) -> np.ndarray:
    """WCAG 2.1 relative luminance of 0–255 sRGB colours (the last axis holds R, G, B)."""
    c = np.asarray(rgb, dtype=float) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """"#rrggbb" as (r, g, b), 0–255."""
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def fast_figure(traces: list[dict], layout: dict) -> go.Figure:
    """A figure from plain dicts, skipping plotly's per-property validation, with a lean template.

    Validation is most of the cost of a small figure (12 ms against 1 ms for a 5×3 heatmap), and a
    page draws a dozen per slider move; tests rebuild every builder's output with validation on.
    """
    return go.Figure(dict(data=traces, layout={"template": lean_template(), **layout}), _validate=False)


class FigureSpec:
    """A figure as its plain dicts, and what ``fast_figure(traces, layout).to_dict()`` gives, without the go.Figure.

    Building the go.Figure and copying it back out (``to_dict``) is most of what a heatmap costs a rerun;
    :meth:`to_dict` writes the same dict straight from the dicts (plotly's own key order: a trace's keys
    sorted with ``type`` last, the layout's sorted; nested dicts as given; arrays as plotly's typed
    arrays), so the chart's JSON is byte for byte what the go.Figure would send.
    ``python bench/bench_rerun_cost.py`` checks that first, on every heatmap variant. :meth:`figure`
    builds the go.Figure (what ``matrix_heatmap`` returns, for tests and slides).
    """
    __slots__ = ("traces", "layout", "_encoded")

    def __init__(self, traces: list[dict], layout: dict):
        self.traces, self.layout, self._encoded = traces, layout, None

    def figure(self) -> go.Figure:
        return fast_figure(self.traces, self.layout)

    @property
    def title(self) -> str:
        t = self.layout.get("title")
        return (t.get("text") if isinstance(t, dict) else t) or ""

    @property
    def height(self):
        return self.layout.get("height")

    @property
    def meta(self):
        return self.layout.get("meta")

    def to_dict(self) -> dict:
        """The dict, written once per template and then shared: what reads it (plotly's to_json) writes nothing into it."""
        import plotly.io as pio

        name = pio.templates.default
        if self._encoded is None or self._encoded[0] != name:
            self._encoded = (name, self._to_dict())
        return self._encoded[1]

    def _to_dict(self) -> dict:
        import plotly.io as pio

        data = []
        for t in self.traces:
            d = {k: _encoded_value(k, t[k]) for k in sorted(t) if k != "type"}
            if "type" in t:
                d["type"] = t["type"]
            data.append(d)
        layout = {k: _encoded_value(k, v) for k, v in self.layout.items()}
        if "template" not in layout:
            layout["template"] = _lean_encoded(pio.templates.default)
        return {"data": data, "layout": {k: layout[k] for k in sorted(layout)}}


_SKIPPED = frozenset(("geojson", "layer", "layers", "range"))  # plotly's is_skipped_key: left as they are


def _encoded_value(key, value):
    """A dict's value as plotly's ``convert_to_base64`` leaves it, on a copy of the dicts and lists.

    Exactly its rules: only a dict's values are converted (not a list's items), keys it skips are
    left alone, and what has ``__array__`` goes through plotly's own ``to_typed_array_spec``.
    """
    if key in _SKIPPED:
        return value
    if hasattr(value, "__array__") or hasattr(value, "__array_interface__"):
        from _plotly_utils.basevalidators import is_homogeneous_array
        from _plotly_utils.utils import to_typed_array_spec

        return to_typed_array_spec(value) if is_homogeneous_array(value) else value
    return _encoded_tree(value)


def _encoded_tree(value):
    if isinstance(value, dict):
        return {k: _encoded_value(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encoded_tree(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_encoded_tree(v) for v in value)
    return value


@functools.lru_cache(maxsize=4)
def _lean_encoded(name: str) -> dict:
    # the lean template as to_dict writes it; shared by every FigureSpec: nothing downstream writes into it
    from _plotly_utils.utils import convert_to_base64

    out = {"template": copy.deepcopy(_lean(name))}
    convert_to_base64(out)
    return out["template"]


# what our figures use of a template: the rest (polar, ternary, geo, 3-D scenes, two dozen trace types)
# is 80% of a small figure's bytes, and the browser reads all of it on every draw
_TEMPLATE_LAYOUT = ("autotypenumbers", "colorway", "font", "hovermode", "hoverlabel", "paper_bgcolor", "plot_bgcolor",
                    "coloraxis", "colorscale", "xaxis", "yaxis", "shapedefaults", "annotationdefaults", "title", "legend")
_TEMPLATE_TRACES = ("heatmap", "scatter", "bar")


def lean_template() -> dict:
    """The default plotly template (Streamlit's theme, inside the app) cut to what these figures use.

    Its colours stay as they are, so the app's light and dark themes still restyle the figures.
    """
    import plotly.io as pio

    return copy.deepcopy(_lean(pio.templates.default))


@functools.lru_cache(maxsize=4)
def _lean(name: str) -> dict:
    import plotly.io as pio

    full = pio.templates[name].to_plotly_json()
    return {"layout": {k: v for k, v in full.get("layout", {}).items() if k in _TEMPLATE_LAYOUT},
            "data": {k: v for k, v in full.get("data", {}).items() if k in _TEMPLATE_TRACES}}


def cell_font_size(shape) -> int:
    """The font size (px at scale 1) of a matrix's per-cell numbers: smaller as its larger side grows."""
    side = max(shape)
    return 17 if side <= 6 else 14 if side <= 12 else 11 if side <= 20 else 9

