"""An upload's adapter_config.json: r, lora_alpha, use_rslora and use_dora, refusing what one A·B cannot represent."""
from __future__ import annotations

import math

from ..adapter import CONFIG_NAME
from ..checks import positive_int
from ..echo import shown
from .strict_json import parse_json


def parse_config(blob: bytes) -> dict:
    """adapter_config.json as strict JSON, which must hold an object."""
    config = parse_json(blob, CONFIG_NAME)
    if not isinstance(config, dict):
        raise ValueError(f"{CONFIG_NAME} must hold a JSON object, got {type(config).__name__}")
    return config


def config_hyperparams(config: dict, d: int, k: int) -> tuple[int, float, bool, bool]:
    """r, lora_alpha, use_rslora and use_dora from a LoRA config, refusing what one A·B cannot represent."""
    if config.get("peft_type") != "LORA":
        raise ValueError(f"peft_type is {shown(repr(config.get('peft_type')))}; only 'LORA' adapters are accepted")
    for field in ("r", "lora_alpha"):
        if field not in config:
            raise ValueError(f"{CONFIG_NAME} has no {field!r}")
    r, alpha, rslora = config["r"], config["lora_alpha"], config.get("use_rslora", False)
    positive_int(f"r in {CONFIG_NAME}", r, exact=True)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"lora_alpha in {CONFIG_NAME} must be a finite number > 0, got {shown(repr(alpha))}")
    if not isinstance(rslora, bool):
        raise ValueError(f"use_rslora in {CONFIG_NAME} must be true or false, got {shown(repr(rslora))}")
    dora = config.get("use_dora", False)
    if not isinstance(dora, bool):
        raise ValueError(f"use_dora in {CONFIG_NAME} must be true or false, got {shown(repr(dora))}")
    if r > min(d, k):
        raise ValueError(f"r = {r:,} in {CONFIG_NAME} is above min(d, k) = {min(d, k)}: "
                         f"a {d}×{k} matrix has rank at most {min(d, k)}")
    _refuse_variants(config)
    return r, float(alpha), rslora, dora


def _refuse_variants(config: dict) -> None:
    # each of these changes what the stored tensors mean, so reading them as plain A, B would be wrong
    # (DoRA does not: its A and B are LoRA's, and its magnitude is read beside them)
    if config.get("fan_in_fan_out"):
        raise ValueError("fan_in_fan_out=true (a Conv1D layout such as GPT-2's) is not accepted; "
                         "only nn.Linear adapters")
    for field in ("rank_pattern", "alpha_pattern"):
        if config.get(field):
            raise ValueError(f"{field} is set in {CONFIG_NAME}; only one r and one lora_alpha are accepted")
