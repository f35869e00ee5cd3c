"""The Training page's config: the example plus AdamW's hyperparameters, the init, and the target."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from .explore import ExploreConfig, _as_float, _as_int, _format, quoted


INITS = ("seed", "peft", "gaussian")
STAGES = ("forward", "loss", "backward", "adamw", "update")
TRAINING_DEFAULTS = {"init": "seed", "rstar": 1, "lr": 0.02, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                     "wd": 0.01, "steps": 300, "step": 1, "stage": "forward"}
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
        return {key: _format(getattr(self, key)) for key in ("init", "rstar", "lr", "beta1", "beta2", "eps", "wd", "steps")}


SETTING_LABELS = {"rstar": "r*", "lr": "lr", "beta1": "β1", "beta2": "β2", "eps": "ε", "wd": "weight decay λ",
                  "steps": "steps N"}


def setting_rules(r_max: int) -> dict[str, tuple[bool, object, str]]:
    """Each setting's (whole number?, test of the value, what the test asks for), for the URL and the widgets."""
    return {
        "rstar": (True, lambda v: 1 <= v <= r_max, f"is outside 1…min(d, k) = {r_max}"),
        "lr": (False, lambda v: 0 < v <= 10, "is outside (0, 10]"),
        "beta1": (False, lambda v: 0 <= v < 1, "is outside [0, 1)"),
        "beta2": (False, lambda v: 0 <= v < 1, "is outside [0, 1)"),
        "eps": (False, lambda v: 0 < v <= 1, "is outside (0, 1]"),
        "wd": (False, lambda v: 0 <= v <= 10, "is outside [0, 10]"),
        "steps": (True, lambda v: 1 <= v <= MAX_TRAIN_STEPS, f"is outside 1…{MAX_TRAIN_STEPS}"),
    }


def check_setting(key: str, raw, r_max: int, *, text: bool = False) -> tuple[int | float | None, str | None]:
    """One training setting checked: (the value, None), or (None, why it is refused).

    A widget's value must be a finite int or float (``text=False``); a URL's may also be the text
    of one (``text=True``). Whole-number settings take 3 or 3.0, not 2.5. Then the value must be in
    the setting's range (:func:`setting_rules`), so NaN, ±inf, 1e308, a string, None or a list
    each get their own reason.
    """
    whole, ok, why = setting_rules(r_max)[key]
    if isinstance(raw, bool) or not (isinstance(raw, numbers.Real) or (text and isinstance(raw, str))):
        return None, "is not a number"
    try:
        value = (_as_int(raw) if whole else _as_float(raw)) if isinstance(raw, str) else float(raw)
    except (TypeError, ValueError, OverflowError):
        return None, "is not a whole number" if whole and _is_finite_text(raw) else "is not a number"
    if not math.isfinite(value):
        return None, "is not a finite number"
    if whole:
        if value != int(value):
            return None, "is not a whole number"
        value = int(value)
    return (value, None) if ok(value) else (None, why)


def _is_finite_text(raw) -> bool:
    try:
        return math.isfinite(float(str(raw).strip()))
    except ValueError:
        return False


def sanitize_training(raw: dict, r_max: int) -> tuple[dict, list[str]]:
    """The Training page's URL values, checked like :func:`sanitize`; ``r_max`` = min(d, k) bounds r*."""
    out, notices = dict(TRAINING_DEFAULTS), []

    def refuse(key, why):
        notices.append(f"{quoted(key, raw[key])} {why}; using {key}={_format(out[key])}.")

    def number(key, parse, ok, why):
        if key not in raw:
            return
        try:
            value = parse(raw[key])
        except (TypeError, ValueError, OverflowError):
            refuse(key, "is not a number")
            return
        if ok(value):
            out[key] = value
        else:
            refuse(key, why)

    if "init" in raw:
        if str(raw["init"]) in INITS:
            out["init"] = str(raw["init"])
        else:
            refuse("init", f"is not an initialisation (choose {', '.join(INITS)})")
    if "stage" in raw:
        if str(raw["stage"]) in STAGES:
            out["stage"] = str(raw["stage"])
        else:
            refuse("stage", f"is not a stage (choose {', '.join(STAGES)})")
    for key in SETTING_LABELS:
        if key in raw:
            value, why = check_setting(key, raw[key], r_max, text=True)
            if why:
                refuse(key, why)
            else:
                out[key] = value
    number("step", _as_int, lambda v: 1 <= v <= out["steps"], f"is outside 1…{out['steps']} (the number of steps)")
    out["rstar"] = min(out["rstar"], r_max)
    return out, notices
