"""The one way a message repeats what a user sent: a URL value, a file name, a config field, a module name.

Streamlit renders every notice as markdown, and its pipeline goes beyond CommonMark: KaTeX between
dollar signs, emoji and icon shortcodes between colons, colour directives, and GitHub's autolinks,
which turn any "http://…", "www.…" or e-mail address in a text node into a link *after* backslash
escapes are resolved (so escaping alone still lets a value become a link). All of these act on text;
none acts inside a code span. So :func:`echo` bounds a value (``lora_core.echo.shown``: one line, no
control or direction characters, at most ``limit`` characters) and shows it as a code span whose
fence is longer than any run of backticks in it: CommonMark then shows its characters exactly.

Whole messages from the core (which bound the values they quote) go through :func:`plain`, which
escapes every ASCII punctuation mark and breaks the autolink, shortcode and directive patterns with
an invisible word joiner, so they render as plain text.
"""
from __future__ import annotations

import re
import string

from lora_core.echo import ECHO_LIMIT, shown

_PUNCTUATION = frozenset(string.punctuation)  # all 32 ASCII punctuation marks: every markdown, LaTeX, HTML sign
_JOINER = "\u2060"  # WORD JOINER: invisible, and it breaks a pattern it sits in
MESSAGE_LIMIT = 400  # a whole message from the core (which bounds the values it quotes) is cut here


def escape_markdown(text: str) -> str:
    """``text`` with every ASCII punctuation mark backslash-escaped: rendered, it shows exactly as written."""
    return "".join("\\" + ch if ch in _PUNCTUATION else ch for ch in text)


def code_span(text: str) -> str:
    """``text`` as a CommonMark code span that shows it exactly, whatever backticks or spaces it holds."""
    if not text.strip():
        return "“" + text + "”" if text else "“”"  # a code span cannot hold only spaces: show them quoted
    runs = [len(run) for run in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    # one space inside each fence is stripped by the renderer; it keeps a leading or trailing backtick apart
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def echo(value, limit: int = ECHO_LIMIT) -> str:
    """A value a user sent, safe to put in a markdown message: bounded, on one line, and never markup.

    Streamlit replaces ``:material/name:`` icons and ``:emoji:`` shortcodes even inside code spans,
    so an invisible word joiner follows each colon.
    """
    return code_span(shown(value, limit).replace(":", ":" + _JOINER))


def quoted(key: str, raw, limit: int = 40) -> str:
    """A URL parameter and the value sent for it, as notices show it: key = `value`."""
    return f"{key} = {echo(raw, limit)}"


_PATTERNS = re.compile(r"(?<=[:@])|(?<=www)(?=\\\.)", re.IGNORECASE)


def plain(message, limit: int = MESSAGE_LIMIT) -> str:
    """A whole plain-text message (an error from the core, which may quote uploads) as safe markdown.

    Every ASCII punctuation mark is escaped, and a word joiner follows each colon and at sign and
    splits "www.", so no autolink, shortcode or directive can match.
    """
    return _PATTERNS.sub(_JOINER, escape_markdown(shown(message, limit)))


def echo_list(values, shown_max: int = 3, limit: int = 24) -> str:
    """Several values a user sent, each echoed, at most ``shown_max`` of them and a count of the rest."""
    values = list(values)
    head = ", ".join(echo(v, limit) for v in values[:shown_max])
    rest = len(values) - shown_max
    return head + (f" and {rest:,} more" if rest > 0 else "")
