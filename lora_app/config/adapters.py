"""The Adapters page's config: which adapters, which module, what the overview colours, and how to merge.

URL parameters (each is a widget key): ``ad_first``, ``ad_second`` and ``ad_third`` (the merge's optional third),
each an adapter by its name: ``run:<a Real model run's key>``, ``dir:<an entry of LORA_ADAPTERS_DIR>``, or
``upload:1`` / ``upload:2``, the session's uploads, which a link cannot carry; ``ad_module`` (a module path),
``ad_metric`` (norm, erank, energy), ``ad_k`` (the top k of the energy share), ``ad_combo`` (linear, cat, svd,
ties, dare_linear), ``ad_w1``, ``ad_w2`` and ``ad_w3`` (the merge's weights), ``ad_density`` (ties and DARE),
``ad_seed`` (DARE's draw) and ``ad_svd_rank`` (0: the largest r).

Each value is checked here for its form; whether the named adapter or module exists is checked where it is
opened (lora_app.compute.adapters), with a notice that names it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from lora_core.adapters.merge import COMBINATIONS
from lora_core.finetune import FinetuneSettings
from lora_core.upload.many import MAX_RANK

from . import fields
from .fields import CHOICE, FLOAT, INT, SNAP, TEXT, Field, Refused, format_value

NAME = re.compile(r"^(run:[A-Za-z0-9+.\-]{1,200}|dir:[A-Za-z0-9_.\- ]{1,120}|upload:[12])$")
MODULE = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+){0,30}$")
METRICS = {"norm": "size ‖ΔW‖ (Frobenius)", "erank": "effective rank", "energy": "energy in the top k"}
EXAMPLES = (f"run:{FinetuneSettings(task='reverse').key()}", f"run:{FinetuneSettings(task='permute').key()}")
K_MAX, WEIGHT_MAX, SEED_MAX = 64, 4.0, 2**31 - 1


def _name(raw) -> str:
    text = str(raw).strip()
    if not NAME.match(text):
        raise Refused("is not an adapter's name (run:<a Real model run>, dir:<an entry of the adapters folder>, "
                      "upload:1 or upload:2)")
    return text


def _optional_name(raw) -> str:
    """An adapter's name, or "" for none (the merge's third adapter)."""
    return _name(raw) if str(raw).strip() else ""


def _module(raw) -> str:
    text = str(raw).strip()
    if text and not MODULE.match(text):
        raise Refused("is not a module path (names of letters, digits and _ joined by dots)")
    return text


FIELDS = (
    Field("ad_first", TEXT, EXAMPLES[0], read=_name, echo="showing {value} instead"),
    Field("ad_second", TEXT, EXAMPLES[1], read=_name, echo="showing {value} instead"),
    Field("ad_third", TEXT, "", read=_optional_name, echo="merging two instead"),
    Field("ad_module", TEXT, "", read=_module, echo="showing the first module instead"),
    Field("ad_metric", CHOICE, "norm", choices=tuple(METRICS)),
    Field("ad_k", INT, 1, lo=1, hi=K_MAX),
    Field("ad_combo", CHOICE, "linear", choices=COMBINATIONS),
    Field("ad_w1", FLOAT, 1.0, lo=-WEIGHT_MAX, hi=WEIGHT_MAX, step=0.05, fit=SNAP),
    Field("ad_w2", FLOAT, 1.0, lo=-WEIGHT_MAX, hi=WEIGHT_MAX, step=0.05, fit=SNAP),
    Field("ad_w3", FLOAT, 1.0, lo=-WEIGHT_MAX, hi=WEIGHT_MAX, step=0.05, fit=SNAP),
    Field("ad_density", FLOAT, 0.5, lo=0.05, hi=1.0, step=0.05, fit=SNAP),
    Field("ad_seed", INT, 0, lo=0, hi=SEED_MAX),
    Field("ad_svd_rank", INT, 0, lo=0, hi=MAX_RANK),
)


@dataclass(frozen=True)
class AdaptersConfig:
    first: str = EXAMPLES[0]
    second: str = EXAMPLES[1]
    third: str = ""              # the merge's optional third adapter
    module: str = ""
    metric: str = "norm"
    k: int = 1
    combo: str = "linear"
    w1: float = 1.0
    w2: float = 1.0
    w3: float = 1.0
    density: float = 0.5
    seed: int = 0
    svd_rank: int = 0

    def url_params(self) -> dict[str, str]:
        """Every control; an upload is named (upload:1) but its bytes stay in the session."""
        return {f.name: format_value(getattr(self, f.name.removeprefix("ad_"))) for f in FIELDS}


def sanitize_adapters(raw: dict) -> tuple[dict, list[str]]:
    return fields.sanitize(raw, FIELDS)


def adapters_config(values: dict) -> AdaptersConfig:
    v = {**fields.defaults(FIELDS), **values}
    return AdaptersConfig(str(v["ad_first"]), str(v["ad_second"]), str(v["ad_third"]), str(v["ad_module"]),
                          str(v["ad_metric"]), int(v["ad_k"]), str(v["ad_combo"]), float(v["ad_w1"]),
                          float(v["ad_w2"]), float(v["ad_w3"]), float(v["ad_density"]), int(v["ad_seed"]),
                          int(v["ad_svd_rank"]))
