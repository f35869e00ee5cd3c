"""Bounding what a user sent before a message repeats it. Plain Python: no torch, no streamlit.

Error messages of the core quote file names, config fields and module names from uploads. Each such
value goes through :func:`shown` first: one line, no control or direction characters, bounded length.
Escaping it for markdown is the app's job (``lora_app.echo``), since only the app knows how it renders.
"""
from __future__ import annotations

import unicodedata

ECHO_LIMIT = 60          # characters of a user's value a message repeats
REPLACEMENT = "\ufffd"  # shown in place of a character that could not be shown safely


def _safe_char(ch: str) -> str:
    cat = unicodedata.category(ch)
    if ch in "\t\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029" or cat in ("Zl", "Zp"):
        return " "       # a line break or tab becomes one space: the message stays on one line
    if cat in ("Cc", "Cf", "Cs"):
        # controls, format characters (right-to-left overrides, zero-width joiners) and lone surrogates:
        # they can reorder or hide the text around them, and a lone surrogate cannot even be sent
        return REPLACEMENT
    return ch


def shown(value, limit: int = ECHO_LIMIT) -> str:
    """``value`` as one bounded line of text: what a message may repeat of something a user sent.

    Longer values keep their first ``limit - 1`` characters and say how long they were, so a
    10,000-character value gives a message of fixed size.
    """
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value[: limit * 4]).decode("utf-8", "replace") + ("…" if len(value) > limit * 4 else "")
    text = value if isinstance(value, str) else _bounded_str(value, limit)
    length = len(text)
    head = "".join(_safe_char(ch) for ch in text[: limit])
    if length <= limit:
        return head
    return f"{head[: limit - 1]}… ({length:,} characters)"


def shown_list(values, most: int = 3) -> str:
    """Values a user sent (file names, keys), each :func:`shown`, at most ``most`` of them and a count of the rest."""
    values = list(values)
    rest = len(values) - most
    return ", ".join(shown(v) for v in values[:most]) + (f" and {rest:,} more" if rest > 0 else "")


def _bounded_str(value, limit: int) -> str:
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - an object whose __str__ fails is still reported, by its type
        text = f"<{type(value).__name__}>"
    return text
