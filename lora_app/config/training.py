"""The Training page's config: the example plus AdamW's hyperparameters, the init, and the target."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import lru_cache

from . import fields
from .explore import ExploreConfig
from .fields import CHOICE, FLOAT, INT, REFUSE, Field, Refused, as_float, as_int, exact, format_value

INITS = ("seed", "peft", "gaussian")
STAGES = ("forward", "loss", "backward", "adamw", "update")
MAX_TRAIN_STEPS = 2000


@dataclass(frozen=True)
class TrainingConfig:
    """What determines a training run; the step and stage being looked at are not part of it."""
    example: ExploreConfig
    init: str = "seed"          # the seed's A and B, or PEFT's default / gaussian with B = 0
    rstar: int = 1              # rank of the seeded "true" update ΔW*
    lr: float = 0.02
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    wd: float = 0.01            # AdamW's decoupled weight decay λ
    steps: int = 300
    target_edits: tuple[tuple[int, int, float], ...] = ()

    def url_params(self) -> dict[str, str]:
        return {key: format_value(getattr(self, key)) for key in ("init", "rstar", "lr", "beta1", "beta2", "eps", "wd", "steps")}


SETTING_LABELS = {"rstar": "r*", "lr": "lr", "beta1": "β1", "beta2": "β2", "eps": "ε", "wd": "weight decay λ",
                  "steps": "steps N"}


def _setting_reader(whole: bool, text: bool):
    """A reader of one setting: whole settings take 3 or 3.0, not 2.5; NaN, ±inf, a string (unless ``text``),
    None or a list each get their own reason."""
    def read(raw):
        if isinstance(raw, bool) or not (isinstance(raw, numbers.Real) or (text and isinstance(raw, str))):
            raise Refused("is not a number")
        try:
            value = (as_int(raw) if whole else as_float(raw)) if isinstance(raw, str) else float(raw)
        except (TypeError, ValueError, OverflowError):
            raise Refused("is not a whole number" if whole and _is_finite_text(raw) else "is not a number") from None
        if not math.isfinite(value):
            raise Refused("is not a finite number")
        if whole:
            if value != int(value):
                raise Refused("is not a whole number")
            value = int(value)
        return value
    return read


def _is_finite_text(raw) -> bool:
    try:
        return math.isfinite(float(str(raw).strip()))
    except ValueError:
        return False


@lru_cache(maxsize=64)  # a table for each r_max (at most 1024) and kind of sender: the recent ones
def setting_fields(r_max: int, *, text: bool = False) -> tuple[Field, ...]:
    """The settings row's fields: a value outside its range is refused, not moved (the run keeps the last good one).

    A widget's value must be a finite int or float (``text=False``); a URL's may also be the text of one.
    """
    whole, number = _setting_reader(True, text), _setting_reader(False, text)
    return (
        Field("rstar", INT, 1, lo=1, hi=r_max, fit=REFUSE, read=whole, moved="is outside 1…min(d, k) = {hi}"),
        Field("lr", FLOAT, 0.02, lo=0, hi=10, ends="(]", fit=REFUSE, read=number),
        Field("beta1", FLOAT, 0.9, lo=0, hi=1, ends="[)", fit=REFUSE, read=number),
        Field("beta2", FLOAT, 0.999, lo=0, hi=1, ends="[)", fit=REFUSE, read=number),
        Field("eps", FLOAT, 1e-8, lo=0, hi=1, ends="(]", fit=REFUSE, read=number),
        Field("wd", FLOAT, 0.01, lo=0, hi=10, ends="[]", fit=REFUSE, read=number),
        Field("steps", INT, 300, lo=1, hi=MAX_TRAIN_STEPS, fit=REFUSE, read=whole),
    )


@lru_cache(maxsize=64)
def training_fields(r_max: int) -> tuple[Field, ...]:
    """The page's URL fields: the init, the stage shown, the settings row, and the step shown (at most the steps)."""
    return (
        Field("init", CHOICE, "seed", choices=INITS, normal=exact, unreadable="is not an initialisation (choose {choices})"),
        Field("stage", CHOICE, "forward", choices=STAGES, normal=exact, unreadable="is not a stage (choose {choices})"),
        *setting_fields(r_max, text=True),
        Field("step", INT, 1, lo=1, hi=lambda v: v["steps"], fit=REFUSE, unreadable="is not a number",
              moved="is outside 1…{hi} (the number of steps)"),
    )


TRAINING_DEFAULTS = fields.defaults(training_fields(1))


def check_setting(key: str, raw, r_max: int, *, text: bool = False) -> tuple[int | float | None, str | None]:
    """One training setting checked: (the value, None), or (None, why it is refused).

    The same check as the URL's (:func:`setting_fields`), for a widget's value (``text=False``).
    """
    field = next(f for f in setting_fields(r_max, text=text) if f.name == key)
    value, why, _ = fields.check(field, raw, {})
    return (None, why) if why else (value, None)


def sanitize_training(raw: dict, r_max: int) -> tuple[dict, list[str]]:
    """The Training page's URL values, checked like :func:`sanitize`; ``r_max`` = min(d, k) bounds r*."""
    return fields.sanitize(raw, training_fields(r_max))
