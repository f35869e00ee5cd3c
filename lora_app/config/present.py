"""The Present page's config: which slide, and how large the text is. URL: ``slide`` (1…len(SLIDES)), ``font``."""
from __future__ import annotations

from . import fields
from .fields import CHOICE, INT, Field

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
    ("real_phi", "Two adapters, the same directions?"),
    ("qlora", "QLoRA: the frozen weight in 4 bits"),
    ("dora", "DoRA: a length and a direction"),
    ("gpu", "Which GPU: the blog's last row, counted"),
    ("matters", "Why it matters"),
)
FONT_SIZES = {"S": 18, "M": 22, "L": 27, "XL": 33}  # px for body text; L reads from the back of a classroom
WITH_CONTROLS = {"equation", "why", "matrices", "compare"}  # slides where r and the preset change the figures
FIELDS = (
    Field("slide", INT, 1, lo=1, hi=len(SLIDES), unreadable="is not a slide number", echo="showing slide {value}"),
    Field("font", CHOICE, "L", choices=tuple(FONT_SIZES), normal=str.upper, unreadable="is not a text size ({choices})",
          echo="using {value}"),
)


def sanitize_present(raw: dict) -> tuple[dict, list[str]]:
    return fields.sanitize(raw, FIELDS)
