"""The Family page's config: the example (sidebar) plus the task the variants train on and each variant's own setting.

URL parameters (each also the widget's key, prefixed so that no other page's widget shares it):
``fam_rstar`` (rank of the task's ΔW*, as on Training), ``fam_lr``, ``fam_steps``, ``fam_ratio`` (LoRA+'s λ) and
``fam_dq`` (QLoRA's double quantization). A value that cannot be used is refused with a notice and the
default is kept, like every other page's.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from lora_core.loraplus import RATIO

from . import fields
from .explore import ExploreConfig
from .fields import BOOL, FLOAT, INT, NEAREST_LOG, REFUSE, SNAP, Field, format_value

LR_CHOICES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
RATIO_CHOICES = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
STEPS_MIN, STEPS_MAX, STEPS_STEP = 10, 1000, 10
WEIGHT_DECAY = 0.01  # AdamW's λ for every variant, as on the Training page


@dataclass(frozen=True)
class FamilyConfig:
    """What determines the Family page's numbers; caches are keyed on it."""
    example: ExploreConfig
    rstar: int = 1              # rank of the seeded ΔW* the task's target comes from (the Training page's r*)
    lr: float = 0.02
    steps: int = 300
    ratio: float = RATIO        # LoRA+: B's learning rate over A's
    double_quant: bool = False  # QLoRA: the absmax constants stored in 8 bits
    magnitude: tuple[float, ...] = ()  # DoRA's m from an uploaded adapter (k numbers), in the session only

    def url_params(self) -> dict[str, str]:
        return {"fam_rstar": format_value(self.rstar), "fam_lr": format_value(self.lr),
                "fam_steps": format_value(self.steps), "fam_ratio": format_value(self.ratio),
                "fam_dq": format_value(self.double_quant)}


@lru_cache(maxsize=64)
def family_fields(r_max: int) -> tuple[Field, ...]:
    """The page's fields; ``r_max`` = min(d, k) bounds r*."""
    return (
        Field("fam_rstar", INT, 1, lo=1, hi=r_max, fit=REFUSE, moved="is outside 1…min(d, k) = {hi}"),
        Field("fam_lr", FLOAT, 0.02, choices=LR_CHOICES, fit=NEAREST_LOG),
        Field("fam_steps", INT, 300, lo=STEPS_MIN, hi=STEPS_MAX, step=STEPS_STEP, fit=SNAP),
        Field("fam_ratio", FLOAT, RATIO, choices=RATIO_CHOICES, fit=NEAREST_LOG),
        Field("fam_dq", BOOL, False),
    )


def sanitize_family(raw: dict, r_max: int) -> tuple[dict, list[str]]:
    """The page's URL (or widget) values, checked like every page's, with a notice for each refusal."""
    return fields.sanitize(raw, family_fields(r_max))


def family_config(example: ExploreConfig, values: dict, magnitude: tuple[float, ...] = ()) -> FamilyConfig:
    """The config from checked values (missing ones take their defaults); ``magnitude`` is an uploaded DoRA m,
    used only when it has one number per output column (the loader checked its values)."""
    v = {**fields.defaults(family_fields(min(example.d, example.k))), **values}
    m = tuple(float(x) for x in magnitude) if len(magnitude) == example.k else ()
    return FamilyConfig(example, int(v["fam_rstar"]), float(v["fam_lr"]), int(v["fam_steps"]),
                        float(v["fam_ratio"]), bool(v["fam_dq"]), m)
