"""The one way a message repeats what a user sent: a URL value, a file name, a config field, a module name.

Streamlit renders every notice as markdown, with KaTeX between dollar signs, emoji and icon
shortcodes between colons, and links, images, headings and HTML. A value a user sent must show as
the characters it is, so :func:`echo` bounds it (``lora_core.echo.shown``: one line, no control or
direction characters, at most ``limit`` characters) and backslash-escapes every ASCII punctuation
mark, which CommonMark, remark-math and Streamlit's directives all read as a literal character.
"""
from __future__ import annotations

import string

from lora_core.echo import ECHO_LIMIT, shown

_PUNCTUATION = frozenset(string.punctuation)  # all 32 ASCII punctuation marks: every markdown, LaTeX, HTML sign
MESSAGE_LIMIT = 400  # a whole message from the core (which bounds the values it quotes) is cut here


def escape_markdown(text: str) -> str:
    """``text`` with every ASCII punctuation mark backslash-escaped: rendered, it shows exactly as written."""
    return "".join("\\" + ch if ch in _PUNCTUATION else ch for ch in text)


def echo(value, limit: int = ECHO_LIMIT) -> str:
    """A value a user sent, safe to put in a markdown message: bounded, on one line, and never markup."""
    return escape_markdown(shown(value, limit))


def quoted(key: str, raw, limit: int = 40) -> str:
    """A URL parameter and the value sent for it, as notices show it: ``key`` = “value”."""
    return f"`{key}` = “{echo(raw, limit)}”"


def plain(message, limit: int = MESSAGE_LIMIT) -> str:
    """A whole plain-text message (an error from the core, which may quote uploads) as safe markdown."""
    return echo(message, limit)


def echo_list(values, shown_max: int = 3, limit: int = 24) -> str:
    """Several values a user sent, each echoed, at most ``shown_max`` of them and a count of the rest."""
    values = list(values)
    head = ", ".join(f"“{echo(v, limit)}”" for v in values[:shown_max])
    rest = len(values) - shown_max
    return head + (f" and {rest:,} more" if rest > 0 else "")
