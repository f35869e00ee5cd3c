"""The Rank page's config: the example (its d, k, r and ΔW = s·A·B) plus the target update ΔW*.

URL parameter: ``decay``, how fast the seeded target's singular values fall (σᵢ = i^−decay). The
target is seeded with the sidebar's seed at the sidebar's d×k; cell edits live in the session only,
like the Explore page's.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import fields
from .explore import ExploreConfig
from .fields import FLOAT, SNAP, Field, format_value

DECAY_MIN, DECAY_MAX, DECAY_STEP = 0.0, 3.0, 0.25
FIELDS = (Field("decay", FLOAT, 1.0, lo=DECAY_MIN, hi=DECAY_MAX, step=DECAY_STEP, fit=SNAP),)
EDITABLE_MAX_SIDE = 16  # a target larger than this is changed through its seed and decay, not cell by cell


@dataclass(frozen=True)
class RankConfig:
    """What determines the Rank page's numbers; caches are keyed on it."""
    example: ExploreConfig
    decay: float = 1.0                                   # σᵢ = i^−decay for the seeded target
    target_edits: tuple[tuple[int, int, float], ...] = ()  # (i, j, value), 0-based

    def url_params(self) -> dict[str, str]:
        return {"decay": format_value(self.decay)}


def sanitize_rank(raw: dict) -> tuple[dict, list[str]]:
    """The page's URL values, checked like :func:`sanitize`, with a notice for each refusal."""
    return fields.sanitize(raw, FIELDS)


def target_edits(cells: dict, d: int, k: int) -> tuple[tuple[int, int, float], ...]:
    """The session's edited cells of ΔW* (already checked by the table editor) that lie inside d×k, in order."""
    return tuple(sorted((i, j, float(v)) for (i, j), v in cells.items() if 0 <= i < d and 0 <= j < k))
