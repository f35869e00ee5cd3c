"""WCAG 2.1 A/AA in Chromium, in the light and the dark theme: axe-core on every page, part and slide.

axe-core (bundled by ``axe-playwright-python``, nothing fetched) checks the HTML. It cannot read
plotly's SVG text, so the axis, title and legend text of every chart is checked here against the
page's background from its computed colours; the numbers inside the cells are checked from the
figure's own colours in test_figures_layout.py.
"""
from __future__ import annotations

import re

import pytest

from helpers import settle, wait_idle
from lora_app import text
from lora_app.config.present import SLIDES
from lora_app.figures.base import contrast

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("navigation_ready")]

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
URLS = ([f"?view={v}" for v in text.EXPLORE_SECTIONS] + [f"training?view={v}" for v in text.training.SECTIONS]
        + [f"attention?view={v}" for v in text.attention.SECTIONS] + [f"real?view={v}" for v in text.real.SECTIONS]
        + [f"rank?view={v}" for v in text.rank.SECTIONS]
        + ["scale"] + [f"present?slide={n}" for n in range(1, len(SLIDES) + 1)])

SVG_TEXT = r"""() => {
  const rgb = (s) => (s.match(/[\d.]+/g) || []).slice(0, 3).map(Number);
  const bg = rgb(getComputedStyle(document.querySelector('[data-testid="stApp"]')).backgroundColor);
  return [...document.querySelectorAll('.stPlotlyChart .xtick text, .stPlotlyChart .ytick text, .stPlotlyChart .gtitle, ' +
      '.stPlotlyChart .gtitle-subtitle, .stPlotlyChart .g-xtitle text, .stPlotlyChart .g-ytitle text, ' +
      '.stPlotlyChart .legendtext, .stPlotlyChart .cbaxis text')]
    .map(t => ({text: t.textContent.slice(0, 30), fill: rgb(getComputedStyle(t).fill), bg}));
}"""


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_axe_finds_no_wcag_violation_on_any_page_part_or_slide(browser, app_url, theme):
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=theme)
    page = context.new_page()
    found, faint = {}, {}
    for url in URLS:
        page.goto(f"{app_url}/{url}")
        settle(page)  # the run with this window's size is over, and the browser has drawn it
        background = page.evaluate("() => getComputedStyle(document.querySelector('[data-testid=\"stApp\"]')).backgroundColor")
        assert (background == "rgb(255, 255, 255)") == (theme == "light"), background  # the theme asked for is on
        violations = axe.run(page, options=WCAG).response["violations"]
        if violations:
            found[url] = [f"{v['id']}: {n['target'][0]} ({n.get('failureSummary', '')[:140]})"
                          for v in violations for n in v["nodes"]][:6]
        low = [t["text"] for t in page.evaluate(SVG_TEXT) if contrast(t["fill"], t["bg"]) < 4.5]
        if low:
            faint[url] = low[:6]
    context.close()
    assert not found, f"axe-core, {theme} theme: {found}"
    assert not faint, f"chart text under 4.5:1 on the {theme} background: {faint}"


def test_the_role_label_is_text_in_the_text_colour_beside_an_orange_swatch(page, app_url):
    page.goto(f"{app_url}/?view=matrices")
    wait_idle(page)
    subtitle = page.locator(".stPlotlyChart .gtitle-subtitle", has_text="trainable").first
    subtitle.wait_for()
    spans = subtitle.evaluate("t => [...t.querySelectorAll('tspan')].map(s => [s.textContent, getComputedStyle(s).fill])")
    swatch = [fill for words, fill in spans if "■" in words]
    label = [fill for words, fill in spans if "trainable" in words]
    assert swatch and label
    assert swatch[0] != label[0]
    assert contrast([int(c) for c in re.findall(r"\d+", label[0])[:3]], (255, 255, 255)) >= 4.5
