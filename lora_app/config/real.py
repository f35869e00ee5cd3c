"""The Real model page's config: the task, where LoRA goes, its hyperparameters and a typed sequence.

URL parameters (each is a widget key): ``real_task`` (reverse, permute), ``real_lora`` (a comma list
of q, k, v, o, ffn, or ``none``; split into the checkboxes ``real_lora_q`` …), ``real_layers``
(all, 1, 2: layers count from 1 on screen), ``real_r``, ``real_alpha``, ``real_rslora``, ``real_lr``,
``real_steps``, ``real_seed``, ``real_full`` (0/1), ``real_dora`` (0/1: DoRA's magnitudes train too),
``real_text`` (the typed sequence) and
``real_sweep`` (the placement of the rank sweep, e.g. q+v).

Every value is checked here, on the server: the browser's widget limits are not a check.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from lora_core.experiments import PLACEMENTS
from lora_core.finetune import MAX_FT_STEPS, TARGET_TYPES, FinetuneSettings, check_settings
from lora_core.tiny import ADAPT_TASKS, MODULE_TYPES, TinyConfig

from ..echo import echo_list, quoted
from . import fields
from .explore import SEED_MAX
from .fields import BOOL, CHOICE, FLOAT, INT, KNOWN_OR_DEFAULT, NAMES, NEAREST_LOG, TEXT, Field, format_value, names_param

TARGETS = tuple(TARGET_TYPES)                 # q, k, v, o, ffn
LORA_KEYS = {t: f"real_lora_{t}" for t in TARGETS}
LR_CHOICES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
STEP_CHOICES = (25, 50, 100, 200, 300, 500, 1000, MAX_FT_STEPS)
ALPHA_MIN, ALPHA_MAX = 0.25, 256.0
LAYER_CHOICES = ("all", "1", "2")
SWEEP_CHOICES = tuple("+".join(p) for p in PLACEMENTS)
TINY = TinyConfig()                           # the shipped model's shape
# the narrowest side of any linear layer: a rank-r update of it needs r ≤ this, whichever matrices are adapted
RANK_MAX = min(min(TINY.module_shape(m)) for m in MODULE_TYPES)
TEXT_MAX = 64                                 # characters of a typed sequence
DEFAULT_TEXT = "3 1 4 1 5 9 2 6"
DEFAULTS = {"real_task": "reverse", "real_layers": "all", "real_r": 4, "real_alpha": 8.0, "real_rslora": False,
            "real_lr": 1e-2, "real_steps": 300, "real_seed": 0, "real_full": False, "real_dora": False,
            "real_text": DEFAULT_TEXT,
            "real_sweep": "q+v"}
DEFAULT_LORA = ("q", "v")
WIDGET_KEYS = (*LORA_KEYS.values(), *DEFAULTS)


@dataclass(frozen=True)
class RealConfig:
    """What determines the page's numbers: the run's settings, the typed sequence and the sweep's placement."""
    settings: FinetuneSettings
    tokens: tuple[int, ...]
    sweep: tuple[str, ...]


def parse_sequence(raw, length: int) -> tuple[int, ...]:
    """Digits typed with or without spaces or commas, e.g. "3 1 4 1 5 9 2 6" or "31415926".

    Raises ValueError with a message that names the problem (echoing the text escaped and bounded).
    """
    text = str(raw)
    if len(text) > TEXT_MAX:
        raise ValueError(f"{quoted('sequence', text)} is {len(text):,} characters long; type {length} digits")
    cleaned = re.sub(r"[\s,;]+", "", text)
    if not cleaned:
        raise ValueError(f"the sequence is empty: type {length} digits from 0 to 9, e.g. {DEFAULT_TEXT}")
    unknown = sorted({c for c in cleaned if c not in "0123456789"})
    if unknown:
        raise ValueError(f"{quoted('sequence', text)} holds {echo_list(unknown[:5])}, which the model has no "
                         f"token for: its only tokens are the digits 0 to 9")
    if len(cleaned) != length:
        raise ValueError(f"{quoted('sequence', text)} has {len(cleaned)} digits; the model reads exactly {length}")
    return tuple(int(c) for c in cleaned)


def lora_param(targets) -> str:
    return names_param(t for t in TARGETS if t in targets)


def _plus(text: str) -> str:
    """A placement as the URL may write it: "Q V" reads as "q+v"."""
    return text.strip().lower().replace(" ", "+")


@lru_cache(maxsize=16)
def real_fields(seq_len: int) -> tuple[Field, ...]:
    """The page's fields, in the order their notices are given (``DEFAULTS`` keeps the URL's order)."""
    return (
        Field("real_lora", NAMES, DEFAULT_LORA, choices=TARGETS, fit=KNOWN_OR_DEFAULT,
              unreadable="is not a matrix of this model (choose from {choices})"),
        *(Field(key, CHOICE, DEFAULTS[key], choices=choices, normal=_plus)
          for key, choices in (("real_task", ADAPT_TASKS), ("real_layers", LAYER_CHOICES), ("real_sweep", SWEEP_CHOICES))),
        Field("real_rslora", BOOL, DEFAULTS["real_rslora"]),
        Field("real_full", BOOL, DEFAULTS["real_full"]),
        Field("real_dora", BOOL, DEFAULTS["real_dora"]),
        Field("real_r", INT, DEFAULTS["real_r"], lo=1, hi=RANK_MAX,
              above="is above the width of this model's matrices: each is {hi} wide on its narrow side, so its rank, "
                    "and r, is at most {hi}"),
        Field("real_seed", INT, DEFAULTS["real_seed"], lo=0, hi=SEED_MAX),
        Field("real_alpha", FLOAT, DEFAULTS["real_alpha"], lo=ALPHA_MIN, hi=ALPHA_MAX),
        *(Field(key, FLOAT, DEFAULTS[key], choices=choices, fit=NEAREST_LOG,
                unreadable=f"is not a positive, finite {what}", echo_moved="using the nearest, {name}={value}")
          for key, choices, what in (("real_lr", LR_CHOICES, "learning rate"), ("real_steps", STEP_CHOICES, "number of steps"))),
        Field("real_text", TEXT, DEFAULTS["real_text"], read=lambda raw: parse_sequence(raw, seq_len),
              echo="showing {value} instead"),
    )


def sanitize_real(raw: dict, cfg: TinyConfig = TINY) -> tuple[dict, list[str]]:
    """The page's URL values as widget values, with a notice for each value refused or moved."""
    values, notices = fields.sanitize(raw, real_fields(cfg.seq_len))
    lora = values.pop("real_lora")
    return {**values, **{LORA_KEYS[t]: t in lora for t in TARGETS}}, notices


def targets_of(values: dict) -> tuple[str, ...]:
    return tuple(t for t in TARGETS if values[LORA_KEYS[t]])


def settings_of(values: dict) -> FinetuneSettings:
    layers = () if values["real_layers"] == "all" else (int(values["real_layers"]) - 1,)
    return FinetuneSettings(task=values["real_task"], targets=targets_of(values), layers=layers,
                            r=int(values["real_r"]), alpha=float(values["real_alpha"]),
                            rslora=bool(values["real_rslora"]), lr=float(values["real_lr"]),
                            steps=int(values["real_steps"]), seed=int(values["real_seed"]),
                            full=bool(values["real_full"]), variant="dora" if values["real_dora"] else "lora")


def real_config(values: dict, last_good: RealConfig | None, cfg: TinyConfig = TINY) -> tuple[RealConfig, list[str]]:
    """The config of these widget values, or the last good one with the reasons these cannot run.

    Checked with the core's own :func:`check_settings`, so the page and the core refuse the same things.
    """
    problems = []
    settings = settings_of(values)
    try:
        check_settings(cfg, settings)
    except ValueError as e:
        problems.append(f"{e}; the last settings that can run are kept.")
        settings = last_good.settings if last_good else FinetuneSettings()
    try:
        tokens = parse_sequence(values["real_text"], cfg.seq_len)
    except ValueError as e:
        problems.append(f"{e}; the last sequence that could be read is kept.")
        tokens = last_good.tokens if last_good else parse_sequence(DEFAULT_TEXT, cfg.seq_len)
    sweep = tuple(values["real_sweep"].split("+")) if values["real_sweep"] in SWEEP_CHOICES else DEFAULT_LORA
    return RealConfig(settings, tokens, sweep), problems


def _shortest(v: float) -> str:
    """The shortest text that reads back as exactly ``v``, without a trailing ".0": 8, 0.01, 2.125."""
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


def real_url(values: dict) -> dict[str, str]:
    """The URL of the widgets as they are, including a value the page refused (the notice says so)."""
    url = {"real_lora": lora_param(targets_of(values))}
    for key in DEFAULTS:
        v = values[key]
        url[key] = format_value(v) if isinstance(v, bool) else (_shortest(v) if isinstance(v, float) else str(v))
    return url
