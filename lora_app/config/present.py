"""The Present page's config: which slide, and how large the text is. URL: ``slide`` (1…len(SLIDES)), ``font``."""
from __future__ import annotations

from .explore import _as_int, quoted

SLIDES = (
    ("what", "What LoRA does"),
    ("equation", "The equation"),
    ("why", "Why it works: count the numbers"),
    ("matrices", "The matrices, with their numbers"),
    ("compare", "Q without LoRA and with LoRA"),
    ("forward", "Training ①: the forward pass"),
    ("backward", "Training ②: backpropagation with W_Q frozen"),
    ("adamw", "Training ③: AdamW moves A_Q and B_Q only"),
    ("where", "Where LoRA goes"),
    ("real", "A real transformer learns a new task"),
    ("real_grid", "Where LoRA goes, measured"),
    ("real_rank", "How small r can be, measured"),
    ("matters", "Why it matters"),
)
FONT_SIZES = {"S": 18, "M": 22, "L": 27, "XL": 33}  # px for body text; L reads from the back of a classroom
WITH_CONTROLS = {"equation", "why", "matrices", "compare"}  # slides where r and the preset change the figures
PRESENT_DEFAULTS = {"slide": 1, "font": "L"}


def sanitize_present(raw: dict) -> tuple[dict, list[str]]:
    out, notices = dict(PRESENT_DEFAULTS), []
    if "slide" in raw:
        try:
            value = _as_int(raw["slide"])
            out["slide"] = min(max(value, 1), len(SLIDES))
            if out["slide"] != value:
                notices.append(f"{quoted('slide', raw['slide'])} is outside 1…{len(SLIDES)}; showing slide {out['slide']}.")
        except (TypeError, ValueError):
            notices.append(f"{quoted('slide', raw['slide'])} is not a slide number; showing slide 1.")
    if "font" in raw:
        if str(raw["font"]).upper() in FONT_SIZES:
            out["font"] = str(raw["font"]).upper()
        else:
            notices.append(f"{quoted('font', raw['font'])} is not a text size ({', '.join(FONT_SIZES)}); using L.")
    return out, notices
