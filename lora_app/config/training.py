"""The Training page's config: the example plus AdamW's hyperparameters, the init, and the target."""
from __future__ import annotations

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
    number("rstar", _as_int, lambda v: 1 <= v <= r_max, f"is outside 1…min(d, k) = {r_max}")
    number("lr", _as_float, lambda v: 0 < v <= 10, "is outside (0, 10]")
    number("beta1", _as_float, lambda v: 0 <= v < 1, "is outside [0, 1)")
    number("beta2", _as_float, lambda v: 0 <= v < 1, "is outside [0, 1)")
    number("eps", _as_float, lambda v: 0 < v <= 1, "is outside (0, 1]")
    number("wd", _as_float, lambda v: 0 <= v <= 10, "is outside [0, 10]")
    number("steps", _as_int, lambda v: 1 <= v <= MAX_TRAIN_STEPS, f"is outside 1…{MAX_TRAIN_STEPS}")
    number("step", _as_int, lambda v: 1 <= v <= out["steps"], f"is outside 1…{out['steps']} (the number of steps)")
    out["rstar"] = min(out["rstar"], r_max)
    return out, notices
