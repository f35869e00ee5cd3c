"""WCAG 2.1 A/AA in Chromium, in the light and the dark theme: axe-core on every page, part and slide.

axe-core (bundled by ``axe-playwright-python``, nothing fetched) checks the HTML. It cannot read
plotly's SVG text, so the axis, title and legend text of every chart is checked here against the
page's background from its computed colours; the numbers inside the cells are checked from the
figure's own colours in test_figures_layout.py.
"""
from __future__ import annotations

import re

import pytest

from helpers import settle, wait_idle, walk
from lora_app import text
from lora_app.config.present import SLIDES
from lora_app.figures.base import contrast

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("navigation_ready")]

# resultTypes: axe lists every node only for violations (for the rules that pass it sends one node each), which is
# all this test reads; it finds the same violations, in about half the time of a full report (1.1 s against 1.6 s a page)
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}, "resultTypes": ["violations"]}
# a switched theme changes colours only: names, roles, labels and structure were checked in the first theme
COLOURS = {"runOnly": {"type": "rule", "values": ["color-contrast", "link-in-text-block"]}, "resultTypes": ["violations"]}
URLS = ([f"?view={v}" for v in text.EXPLORE_SECTIONS] + [f"training?view={v}" for v in text.training.SECTIONS]
        + [f"family?view={v}" for v in text.family.SECTIONS]
        + [f"attention?view={v}" for v in text.attention.SECTIONS] + [f"real?view={v}" for v in text.real.SECTIONS]
        + [f"adapters?view={v}" for v in text.adapters.SECTIONS] + [f"rank?view={v}" for v in text.rank.SECTIONS]
        + ["scale"] + [f"present?slide={n}" for n in range(1, len(SLIDES) + 1)])

SVG_TEXT = r"""() => {
  const rgb = (s) => (s.match(/[\d.]+/g) || []).slice(0, 3).map(Number);
  const bg = rgb(getComputedStyle(document.querySelector('[data-testid="stApp"]')).backgroundColor);
  return [...document.querySelectorAll('.stPlotlyChart .xtick text, .stPlotlyChart .ytick text, .stPlotlyChart .gtitle, ' +
      '.stPlotlyChart .gtitle-subtitle, .stPlotlyChart .g-xtitle text, .stPlotlyChart .g-ytitle text, ' +
      '.stPlotlyChart .legendtext, .stPlotlyChart .cbaxis text')]
    .map(t => ({text: t.textContent.slice(0, 30), fill: rgb(getComputedStyle(t).fill), bg}));
}"""


def test_axe_finds_no_wcag_violation_on_any_page_part_or_slide_in_either_theme(shared_context, app_url):
    """Every page, part and slide, reached as a person reaches them (helpers.walk), in both themes.

    At each stop the page is checked in the theme it has (every WCAG A/AA rule), then the system's
    colour scheme is switched and its colours are checked again; the next stop starts in that theme,
    so every stop gets every rule in one theme and the colour rules in both. Streamlit follows the system's scheme
    live, as a laptop switching to dark mode at sunset does: the page's own CSS, plotly's SVG text and
    the figures are redrawn without a reload, exactly as a page opened in that theme draws them.
    """
    from axe_playwright_python.sync_playwright import Axe

    script = Axe().axe_script  # axe-core's 570 kB, bundled with axe-playwright-python

    def axe_run(options: dict) -> dict:
        # Axe.run sends and evaluates the whole script before every check; the walk stays in one document (each
        # stop is a rerun, not a load), so axe is put into it once and then called (the same axe.run, the same
        # options), which spares Chromium 46 parses of it
        if not page.evaluate("() => typeof window.axe !== 'undefined'"):
            page.evaluate(script)
        return page.evaluate("options => axe.run(document, options)", options)

    page = shared_context.new_page()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.emulate_media(color_scheme="light", reduced_motion="no-preference")  # the default, not the worker's "reduce"
    found, faint, theme = {}, {}, "light"

    def check(url: str, options: dict) -> None:
        background = page.evaluate("() => getComputedStyle(document.querySelector('[data-testid=\"stApp\"]')).backgroundColor")
        assert (background == "rgb(255, 255, 255)") == (theme == "light"), (url, theme, background)  # the theme is on
        violations = axe_run(options)["violations"]
        if violations:
            found[f"{url} ({theme})"] = [f"{v['id']}: {n['target'][0]} ({n.get('failureSummary', '')[:140]})"
                                         for v in violations for n in v["nodes"]][:6]
        low = [t["text"] for t in page.evaluate(SVG_TEXT) if contrast(t["fill"], t["bg"]) < 4.5]
        if low:
            faint[f"{url} ({theme})"] = low[:6]

    for url in walk(page, app_url, URLS):
        check(url, WCAG)
        theme = "dark" if theme == "light" else "light"
        page.emulate_media(color_scheme=theme)
        page.wait_for_function("light => (getComputedStyle(document.querySelector('[data-testid=\"stApp\"]'))"
                               ".backgroundColor === 'rgb(255, 255, 255)') === light", arg=theme == "light")
        settle(page)
        check(url, COLOURS)
    page.close()
    assert len({key.rsplit(" ", 1)[0] for key in [*found, *faint]} | set(URLS)) == len(URLS)
    assert not found, f"axe-core: {found}"
    assert not faint, f"chart text under 4.5:1 on the page's background: {faint}"


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
