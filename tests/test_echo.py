"""The one way a message repeats what a user sent (lora_app.echo): never markup, one line, bounded.

The oracle is an independent CommonMark renderer (markdown-it-py): an echoed value must render as
one code span holding exactly the value's characters, inside a single paragraph and nothing else.
Streamlit's own renderer (KaTeX, emoji and icon shortcodes, directives) is checked in the browser, in test_browser_hostile.py.
"""
import html
import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from lora_app.echo import code_span, echo, echo_list, escape_markdown, plain, quoted
from lora_core.echo import ECHO_LIMIT, REPLACEMENT, shown

MD = MarkdownIt("commonmark").enable("table").enable("strikethrough")
WORD_JOINER = "\u2060"

# every markdown construct, HTML, LaTeX, Streamlit's own syntax, line breaks, direction marks, length
HOSTILE = {
    "image": "![x](http://host/x.png)",
    "link": "[session expired, sign in again](https://evil.example/login)",
    "autolink": "<https://evil.example>",
    "bare url": "https://evil.example/x?y=1",
    "bold": "**bold** __also__",
    "italic": "*it* _it_",
    "strike": "~~gone~~",
    "heading": "# Heading",
    "setext": "Title\n=====",
    "quote": "> quoted",
    "list": "- item\n1. item",
    "code span": "`code` ``more``",
    "fence": "```\nfenced\n```",
    "indented code": "\n    indented",
    "table": "| a | b |\n|---|---|\n| 1 | 2 |",
    "html": "<b>bold</b><img src=x onerror=alert(1)><script>alert(1)</script>",
    "entity": "&lt;b&gt; &amp; &#x3C;",
    "latex inline": "$\\frac{a}{b}$",
    "latex block": "$$x^{2}$$",
    "latex bare": "\\times 10^{-4} \\frac12",
    "emoji": ":smile: :red[red text] :material/warning:",
    "backslashes": "\\*not bold\\* \\\\",
    "newlines": "a\nb\r\nc\rd\u2028e\u2029f\x85g",
    "tabs and controls": "a\tb\x00c\x1bd\x7f",
    "rtl marks": "abc\u202edcba\u202c \u200f\u200e\u2066x\u2069 \u061c",
    "zero width": "pay\u200bpal \ufeff",
    "lone surrogate": "a\ud800b",
    "10k characters": "y" * 10_000,
    "10k markup": "**" * 5_000,
    "footnote": "[^1]\n\n[^1]: note",
    "reference link": "[a][r]\n\n[r]: https://evil.example",
    "comment": "<!-- hidden -->",
}


def rendered_text(markdown: str, allowed: str = "") -> str:
    """The rendered paragraph's inner HTML, or fail if the markdown became anything but one plain paragraph.

    ``allowed`` is markup of our own that may appear (the key's code span); anything else is a tag too many.
    """
    out = MD.render(markdown)
    assert out.startswith("<p>") and out.endswith("</p>\n") and out.count("<p>") == 1, out
    inner = out[3:-5]
    rest = inner.replace(allowed, "", 1).replace(allowed.replace("<", "</"), "", 1) if allowed else inner
    assert "<" not in rest, f"markup in {inner!r}"  # no tag of any kind
    return inner


def code_of(inner: str) -> str:
    """The one code span's text in a rendered paragraph "Refused: <code>…</code>." (or the quoted empty value)."""
    m = re.fullmatch(r"Refused: (?:<code>(.*)</code>|“(\s*)”)\.", inner)  # white space only: shown quoted
    assert m, inner
    return html.unescape(m[1] if m[1] is not None else m[2]).replace(WORD_JOINER, "")


@pytest.mark.parametrize("name", HOSTILE)
def test_an_echoed_value_renders_as_its_own_characters(name):
    value = HOSTILE[name]
    out = echo(value)
    assert "\n" not in out and "\r" not in out
    assert code_of(rendered_text(f"Refused: {out}.", allowed="<code>")) == shown(value)


@pytest.mark.parametrize("name", HOSTILE)
def test_a_quoted_url_value_renders_as_its_own_characters(name):
    value = HOSTILE[name]
    inner = rendered_text("Refused: " + quoted("lora", value).removeprefix("lora = ") + ".", allowed="<code>")
    assert code_of(inner) == shown(value, 40)


def test_shown_is_one_bounded_line_without_hidden_characters():
    assert shown("abc") == "abc" and shown(42) == "42" and shown(None) == "None"
    assert shown("a\nb\r\nc\u2028d") == "a b  c d"
    assert shown("abc\u202edcba") == f"abc{REPLACEMENT}dcba"  # a right-to-left override is shown, not obeyed
    assert shown("a\ud800b") == f"a{REPLACEMENT}b"  # a lone surrogate cannot even be sent to the browser
    long = shown("y" * 10_000)
    assert long == "y" * (ECHO_LIMIT - 1) + "… (10,000 characters)"
    assert shown(b"\xff\xfebytes") == "\ufffd\ufffdbytes"


class Unprintable:
    def __str__(self):
        raise RuntimeError("no")


def test_shown_survives_values_whose_str_fails():
    assert shown(Unprintable()) == "<Unprintable>"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=()), max_size=300),
       st.integers(min_value=2, max_value=120))
def test_echo_is_bounded_single_line_and_never_markup(value, limit):
    out = echo(value, limit)
    text = shown(value, limit)
    assert len(text) <= limit + len(" (999,999 characters)")
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in text)
    assert code_of(rendered_text(f"Refused: {out}.", allowed="<code>")) == text


def test_escape_markdown_escapes_exactly_the_ascii_punctuation():
    assert escape_markdown("a.b-c é") == "a\\.b\\-c é"
    punctuation = "".join(chr(c) for c in range(0x21, 0x7F) if not chr(c).isalnum())
    assert len(punctuation) == 32 and escape_markdown(punctuation) == "".join("\\" + ch for ch in punctuation)


def test_a_list_of_values_is_bounded_in_number_and_length():
    out = echo_list(["x" * 100, "**b**", "c", "d", "e"])
    assert out.count("`") == 6 and out.endswith(" and 2 more") and "`**b**`" in out
    assert len(out) < 120


def test_a_core_message_is_bounded_and_escaped_as_a_whole():
    message = "lora_A.weight has unexpected key ![x](http://h/x.png) " + "z" * 1000
    out = plain(message)
    assert "![" not in out and len(out) < 500
    rendered = html.unescape(rendered_text(out)).replace(WORD_JOINER, "")
    assert rendered == shown(message, 400)


def test_a_core_message_cannot_hold_an_autolink_a_shortcode_or_a_directive():
    """Streamlit links "http://…", "www.…" and e-mail addresses in text after escapes are read, and
    replaces :shortcodes: and :red[directives]; a word joiner after ":" and "@" and in "www." stops all."""
    out = plain("see http://evil.example, www.evil.example, a@evil.example, :smile: and :red[x]")
    for pattern in ("://", "www.", "@e", ":s", ":r"):
        assert pattern not in html.unescape(MD.render(out))
    assert html.unescape(MD.render(out)).replace(WORD_JOINER, "").strip() == (
        "<p>see http://evil.example, www.evil.example, a@evil.example, :smile: and :red[x]</p>")


@pytest.mark.parametrize("text", ["a", "`", "``", "a`b", "`a", "a`", " a ", "```x```", "a `` b", "\xa0", " ", "\u3000 "])
def test_a_code_span_shows_any_backticks_exactly(text):
    inner = rendered_text(f"Refused: {code_span(text)}.", allowed="<code>")
    assert code_of(inner) == text
