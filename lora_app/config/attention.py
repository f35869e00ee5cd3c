"""The Attention page's config: the example plus which matrices carry LoRA, the heads and the mask.

URL parameters: ``lora`` (a comma list of q, k, v, o, ffn, or ``none``), ``heads``, ``head`` (the one
shown, from 1) and ``causal`` (0 or 1). The checkboxes' keys are ``lora_q`` … ``lora_ffn``: one
checkbox per matrix reads better on a projector than one multi-select, so ``lora`` is split here.
"""
from __future__ import annotations

from dataclasses import dataclass

from lora_core.attention import PROJECTIONS
from lora_core.scale import TARGETS

from ..echo import echo_list
from .explore import ExploreConfig, _as_int, _format, quoted

HEAD_CHOICES = (1, 2, 3, 4)
MAX_WIDTH = 1024  # heads·k: the widest projection the attention core builds
FFN_RATIO = 4     # the FFN's inner width is 4·d, as in GPT-2, BERT and the original transformer
LORA_KEYS = {t: f"lora_{t}" for t in TARGETS}
ATTENTION_DEFAULTS = {"lora": ("q", "v"), "heads": 1, "head": 1, "causal": False}
WIDGET_KEYS = (*LORA_KEYS.values(), "heads", "head", "causal")


@dataclass(frozen=True)
class AttentionConfig:
    """What determines the Attention page's numbers; caches are keyed on it."""
    example: ExploreConfig
    lora: tuple[str, ...] = ("q", "v")  # targets with an adapter, in TARGETS order; "ffn" only counts
    heads: int = 1                       # each head is k wide, so head 1 is the Explore page's Q
    causal: bool = False                 # GPT-style: token i sees tokens 1…i only

    @property
    def projections(self) -> tuple[str, ...]:
        """The adapted attention projections (the FFN sits after attention and cannot change it)."""
        return tuple(t for t in self.lora if t in PROJECTIONS)


def max_heads(k: int) -> int:
    return max(1, min(HEAD_CHOICES[-1], MAX_WIDTH // k))


def lora_param(targets) -> str:
    return ",".join(t for t in TARGETS if t in targets) or "none"


def sanitize_attention(raw: dict) -> tuple[dict, list[str]]:
    """The page's URL values as widget values (``lora_q`` … booleans), with a notice for each refusal."""
    out, notices = {"heads": 1, "head": 1, "causal": False}, []
    chosen = set(ATTENTION_DEFAULTS["lora"])
    if "lora" in raw:
        names = [t.strip().lower() for t in str(raw["lora"]).split(",") if t.strip()]
        if names == ["none"]:
            names = []
        unknown = [t for t in names if t not in TARGETS]
        chosen = {t for t in names if t in TARGETS}
        if unknown:
            notices.append(f"{quoted('lora', raw['lora'])}: {echo_list(unknown)} is not a matrix LoRA can adapt here "
                           f"(choose from {', '.join(TARGETS)}; embeddings stay frozen); using "
                           f"lora={lora_param(chosen)}.")
    out.update({LORA_KEYS[t]: t in chosen for t in TARGETS})
    for key, hi in (("heads", HEAD_CHOICES[-1]), ("head", HEAD_CHOICES[-1])):
        if key not in raw:
            continue
        try:
            value = _as_int(raw[key])
            out[key] = min(max(value, 1), hi)
            if out[key] != value:
                notices.append(f"{quoted(key, raw[key])} is outside 1…{hi}; using {key}={out[key]}.")
        except (TypeError, ValueError):
            notices.append(f"{quoted(key, raw[key])} is not a whole number; using {key}=1.")
    if out["head"] > out["heads"]:
        notices.append(f"{quoted('head', raw['head'])} is beyond the {out['heads']} head(s); showing head 1.")
        out["head"] = 1
    if "causal" in raw:
        value = str(raw["causal"]).strip().lower()
        if value in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            out["causal"] = value in ("1", "true", "yes", "on")
        else:
            notices.append(f"{quoted('causal', raw['causal'])} is not 0 or 1; using causal=0.")
    return out, notices


def fit_to_example(values: dict, k: int) -> tuple[dict, list[str]]:
    """Clamp the heads to what fits k columns each, and the head shown to the heads, saying why.

    The limit depends on k, which the sidebar can change at any time, so it is applied on every run.
    """
    values, notes = dict(values), []
    heads = min(max(int(values["heads"]), 1), HEAD_CHOICES[-1])
    if heads > max_heads(k):
        notes.append(f"{heads} heads of width k = {k} would need more than {MAX_WIDTH} columns; "
                     f"using {max_heads(k)}.")
        heads = max_heads(k)
    values["heads"], values["head"] = heads, min(max(int(values["head"]), 1), heads)
    return values, notes


def attention_config(example: ExploreConfig, values: dict) -> AttentionConfig:
    lora = tuple(t for t in TARGETS if values[LORA_KEYS[t]])
    return AttentionConfig(example, lora, int(values["heads"]), bool(values["causal"]))


def attention_url(cfg: AttentionConfig, head: int) -> dict[str, str]:
    return {"lora": lora_param(cfg.lora), "heads": str(cfg.heads), "head": str(head),
            "causal": _format(cfg.causal)}
