"""The Attention page's config: the example plus which matrices carry LoRA, the heads and the mask.

URL parameters: ``lora`` (a comma list of q, k, v, o, ffn, or ``none``), ``heads``, ``head`` (the one
shown, from 1) and ``causal`` (0 or 1). The checkboxes' keys are ``lora_q`` … ``lora_ffn``: one
checkbox per matrix reads better on a projector than one multi-select, so ``lora`` is split here.
"""
from __future__ import annotations

from dataclasses import dataclass

from lora_core.attention import PROJECTIONS
from lora_core.scale import TARGETS

from ..echo import quoted
from . import fields
from .explore import ExploreConfig
from .fields import BOOL, INT, NAMES, Field, format_value, names_param

HEAD_CHOICES = (1, 2, 3, 4)
MAX_WIDTH = 1024  # heads·k: the widest projection the attention core builds
FFN_RATIO = 4     # the FFN's inner width is 4·d, as in GPT-2, BERT and the original transformer
LORA_KEYS = {t: f"lora_{t}" for t in TARGETS}
FIELDS = (
    Field("lora", NAMES, ("q", "v"), choices=TARGETS,
          unreadable="is not a matrix LoRA can adapt here (choose from {choices}; embeddings stay frozen)"),
    Field("heads", INT, 1, lo=1, hi=HEAD_CHOICES[-1]),
    Field("head", INT, 1, lo=1, hi=HEAD_CHOICES[-1]),  # then at most heads: see sanitize_attention
    Field("causal", BOOL, False),
)
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
    return names_param(t for t in TARGETS if t in targets)


def sanitize_attention(raw: dict) -> tuple[dict, list[str]]:
    """The page's URL values as widget values (``lora_q`` … booleans), with a notice for each refusal."""
    values, notices = fields.sanitize(raw, FIELDS[:3])
    if values["head"] > values["heads"]:  # said before any notice about causal, the next field
        notices.append(f"{quoted('head', raw['head'])} is beyond the {values['heads']} head(s); showing head 1.")
        values["head"] = 1
    causal, more = fields.sanitize(raw, FIELDS[3:])
    lora = values.pop("lora")
    return {**values, **causal, **{LORA_KEYS[t]: t in lora for t in TARGETS}}, notices + more


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
            "causal": format_value(cfg.causal)}
