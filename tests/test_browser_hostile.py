"""Hostile link values, as Streamlit's renderer shows them: the characters they are, never markup.

test_echo.py checks the escaping against a CommonMark renderer; only a browser shows what Streamlit's
own markdown does with KaTeX, emoji and icon shortcodes and its colour directives. Each page is opened
with a link that puts a different hostile string in each of its parameters; every notice must then
show those strings literally and bounded, no notice may hold a link, image, heading, emphasis or
formula, and the browser must request nothing from any other host.
"""
import re
from urllib.parse import quote, urlparse

import pytest

from helpers import wait_idle
from lora_core.echo import shown

pytestmark = pytest.mark.browser

HOSTILE = [
    "![x](http://evil.example/x.png)",
    "[session expired, sign in again](https://evil.example/login)",
    "**bold** # heading _it_",
    "$\\frac{a}{b}$ \\times10^{-4}",
    ":smile: :red[red] :material/warning:",
    "<img src=http://evil.example/y.png><b>b</b>",
    "a\nb\n\n# Heading\n```\ncode",
    "rtl\u202eeulav\u202c",
    "y" * 10_000,
]

# per page, the parameters its link takes (the example's own are read on every page)
PAGES = {
    "": ["preset", "d", "alpha", "view", "rslora", "seed", "n", "k", "r"],
    "training": ["init", "stage", "lr", "rstar", "steps", "view", "wd", "beta1", "preset"],
    "attention": ["lora", "heads", "causal", "head", "view", "preset", "d", "k", "n"],
    "real": ["real_task", "real_lora", "real_layers", "real_r", "real_alpha", "real_lr", "real_steps", "view",
             "real_text"],
    "family": ["fam_rstar", "fam_lr", "fam_steps", "fam_ratio", "fam_dq", "view", "preset", "d", "k"],
    "rank": ["decay", "view", "preset", "d", "k", "r", "seed", "alpha", "n"],
    "scale": ["model", "targets", "scale_r", "view", "preset", "d", "k", "n", "r"],
    "present": ["slide", "font", "preset", "d", "k", "n", "r", "alpha", "seed"],
}
MARKUP = "a, img, strong, em, h1, h2, h3, h4, h5, h6, .katex, pre, blockquote, ul, ol, table, hr, [style*='color']"


def flat(text: str) -> str:
    """Text as compared: runs of white space as one space, without the invisible word joiners echo() adds."""
    return re.sub(r"\s+", " ", text.replace("\u2060", "")).strip()


@pytest.mark.parametrize("path", PAGES)
def test_hostile_link_values_show_as_text_and_fetch_nothing(page, app_url, navigation_ready, path):
    keys = PAGES[path]
    values = dict(zip(keys, HOSTILE))
    query = "&".join(f"{key}={quote(value, safe='')}" for key, value in values.items())
    foreign = []
    page.on("request", lambda req: foreign.append(req.url) if urlparse(req.url).hostname not in
            ("localhost", "127.0.0.1") and not req.url.startswith(("data:", "blob:")) else None)
    page.goto(f"{app_url}/{path}?{query}")
    notices = "[data-testid='stAlertContentWarning'], [data-testid='stAlertContentError']"
    page.wait_for_selector(notices)
    wait_idle(page)
    alerts = page.locator(notices)  # the page's own info boxes may use bold; notices quoting a user may not
    texts = [flat(t) for t in alerts.all_inner_texts()]
    assert texts, "a hostile link must get notices"
    assert all(len(t) < 400 for t in texts), max(texts, key=len)
    found = alerts.locator(MARKUP)
    assert found.count() == 0, [found.nth(i).evaluate("e => e.outerHTML")[:200] for i in range(found.count())]
    joined = " ".join(texts)
    echoed = 0
    for key, value in values.items():
        if f"{key} = " in joined:
            assert flat(shown(value, 40)) in joined, (key, value[:40])
            echoed += 1
    assert echoed >= 3, joined[:300]
    assert not page.locator("[data-testid='stException']").count()
    assert not foreign, foreign[:3]
