"""A classroom's screens in Chromium: slides that fit, pages that narrow, keys that never stick, taps, contrast.

Sizes are the projectors and screens a class has (1024×768 up to 3840×2160), a 390 px phone, a 768 px
tablet and narrow laptops. The default run takes a representative set of slides and sizes; the whole
matrix (every slide, every size, every text size) is marked ``matrix`` and run by CI after it.
"""
from __future__ import annotations

import re

import pytest

from helpers import settle, walk
from layout_checks import measure, problems
from lora_app.config.present import SLIDES

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("navigation_ready")]

PROJECTORS = [(1024, 768), (1280, 720), (1280, 800), (1366, 768), (1920, 1080), (3840, 2160)]
FONTS = ["S", "M", "L", "XL"]
SLIDE_COUNT = len(SLIDES)


def go_to_slide(page, n: int) -> None:
    page.keyboard.press("PageDown")
    page.wait_for_function("n => (document.querySelector('h1') || {}).innerText?.startsWith(n + ' ·')", arg=n,
                           timeout=20_000)
    settle(page)


def check_every_slide(shared_context, app_url, width, height, font):
    """Open slide 1 at this size and text size, step through every slide with a clicker's PageDown, measure each."""
    page = shared_context.new_page()
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{app_url}/present?slide=1&font={font}")
    settle(page)
    found = {}
    for n in range(1, SLIDE_COUNT + 1):
        if n > 1:
            go_to_slide(page, n)
        wrong = problems(measure(page))
        if wrong:
            found[n] = wrong[:5]
        assert page.locator("[data-testid='stException']").count() == 0
    page.close()
    assert not found, f"at {width}×{height}, text size {font}: {found}"


# the two ends of the matrix below, which CI's `-m matrix` run checks whole (1366×768 at M, 1920×1080 at XL among it):
# the smallest projector with large text, the largest screen with the smallest
@pytest.mark.parametrize("width, height, font", [(1024, 768, "L"), (3840, 2160, "S")])
def test_every_slide_fits_a_representative_screen(shared_context, app_url, width, height, font):
    check_every_slide(shared_context, app_url, width, height, font)


@pytest.mark.matrix
@pytest.mark.parametrize("font", FONTS)
@pytest.mark.parametrize("width, height", PROJECTORS)
def test_every_slide_fits_every_screen_at_every_text_size(shared_context, app_url, width, height, font):
    check_every_slide(shared_context, app_url, width, height, font)


def test_the_text_size_scales_the_figures_and_the_controls_too(page, app_url):
    page.set_viewport_size({"width": 1920, "height": 1080})
    sizes = {}
    for font in ("S", "XL"):
        page.goto(f"{app_url}/present?slide=4&font={font}")
        settle(page)
        sizes[font] = page.evaluate("""() => ({
          body: parseFloat(getComputedStyle(document.querySelector('[data-testid="stMarkdownContainer"] p')).fontSize),
          cell: parseFloat(document.querySelector('.textpoint text').style.fontSize),
          tick: parseFloat(document.querySelector('.ytick text').style.fontSize),
          button: parseFloat(getComputedStyle(document.querySelector('.st-key-present_next button')).fontSize),
          label: parseFloat(getComputedStyle(document.querySelector('[data-testid="stWidgetLabel"] p')).fontSize)})""")
    for part in ("body", "tick", "button", "label"):
        assert sizes["XL"][part] > 1.5 * sizes["S"][part], (part, sizes)
    assert sizes["XL"]["cell"] >= sizes["S"]["cell"]


# --- pages from a phone to a narrow laptop --------------------------------------------------------

# a phone and a projector in the default run; a tablet and a narrow laptop, between them, in CI's `-m matrix` run
NARROW = [(390, 844), pytest.param(768, 1024, marks=pytest.mark.matrix), (1024, 768),
          pytest.param(1100, 800, marks=pytest.mark.matrix)]
PAGES = ["?view=matrices", "?view=update", "?view=q", "?view=cell", "training?view=step", "training?view=task",
         "training?view=loss", "family?view=qlora", "family?view=dora", "family?view=pissa", "family?view=loraplus",
         "family?view=vera", "family?view=compare", "attention?view=qkv", "attention?view=scores", "attention?view=output",
         "attention?view=change", "attention?view=out_change", "rank?view=spectrum", "rank?view=copy", "scale"]

TRUNCATED = r"""() => [...document.querySelectorAll('button')].filter(b => b.offsetParent !== null).filter(b => {
  const r = b.getBoundingClientRect(); return r.width > 0 && r.right > 0 && r.left < window.innerWidth; }).filter(b => {
  const p = b.querySelector('p') || b; return p.scrollWidth > p.clientWidth + 1 || /…$|\.\.$/.test(p.textContent.trim()); })
  .map(b => b.textContent.trim().slice(0, 30))"""


@pytest.mark.parametrize("width, height", NARROW)
def test_pages_narrow_without_overlapping_numbers_or_cut_labels(browser, shared_context, app_url, width, height):
    if width < 800:  # a phone's or a tablet's browser: touch, and the page's own viewport
        context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=True, has_touch=True)
        page = context.new_page()
    else:  # a laptop's or a projector's: a tab of the worker's browser at that size
        context, page = None, shared_context.new_page()
        page.set_viewport_size({"width": width, "height": height})
    found = {}
    for path in walk(page, app_url, PAGES):  # from part to part by its tab, as a student on a phone goes
        wrong = problems(measure(page), slide=False)
        wrong += [f"button label cut: {label!r}" for label in page.evaluate(TRUNCATED)]
        if wrong:
            found[path] = wrong[:5]
        assert page.locator("[data-testid='stException']").count() == 0
    context.close() if context else page.close()
    assert not found, f"at {width}×{height}: {found}"


# --- keys -------------------------------------------------------------------------------------------

def test_p_plays_and_p_again_pauses(page, app_url):
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{app_url}/training?view=step")
    settle(page)
    page.locator("h1").click()
    page.keyboard.press("p")
    page.get_by_role("button", name=re.compile("Pause")).wait_for(timeout=15_000)
    step = lambda: int(re.search(r"Step (\d+) of", page.locator("h3").first.inner_text()).group(1))
    page.wait_for_function("() => /Step ([3-9]|\\d\\d+) of/.test(document.querySelector('h3')?.innerText)",
                           timeout=20_000)  # it plays
    page.keyboard.press("p")
    page.get_by_role("button", name=re.compile("Play")).wait_for(timeout=15_000)
    settle(page)
    paused_at = step()
    page.wait_for_timeout(2000)  # more than three play intervals
    assert step() == paused_at
    assert page.get_by_role("button", name=re.compile("Play")).count() == 1
    assert re.search(rf"[?&]step={paused_at}(&|$)", page.url)  # the paused step is in the link


def heading(page) -> str:
    return page.locator("h1").first.inner_text()


def wait_heading(page, start: str) -> None:
    page.wait_for_function("t => (document.querySelector('h1') || {}).innerText?.startsWith(t)", arg=start, timeout=20_000)
    settle(page)


def test_a_clicker_moves_the_slide_after_the_r_slider_was_clicked(page, app_url):
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(f"{app_url}/present?slide=4")
    settle(page)
    slider = page.locator("[data-testid='stSlider'] input[type='range']").first
    r_before = slider.input_value()
    thumb = page.locator("[data-testid='stSlider'] [data-testid='stSliderThumbValue']").first
    box = thumb.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] + 8)  # on the thumb: r stays where it was
    settle(page)
    assert page.evaluate("() => !!document.activeElement.closest('[data-testid=\"stSlider\"]')")  # the slider has focus
    page.keyboard.press("PageDown")
    wait_heading(page, "5 ·")
    assert re.search(rf"[?&]r={r_before}(&|$)", page.url)
    # the same after a select: the preset is chosen with the mouse, then → moves the slide
    page.locator("[data-testid='stSelectbox']").first.click()
    page.get_by_role("option").first.click()
    settle(page)
    page.keyboard.press("ArrowRight")
    wait_heading(page, "6 ·")
    assert re.search(r"[?&]slide=6(&|$)", page.url)


def test_escape_hands_the_keys_back_and_tab_focus_keeps_the_sliders_keys(page, app_url):
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{app_url}/present?slide=4")
    settle(page)
    slider = page.locator("[data-testid='stSlider'] input[type='range']").first
    slider.focus()  # focus by keyboard (as Tab gives it): the slider keeps its arrows
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    start = int(slider.input_value())
    page.keyboard.press("ArrowLeft" if start > 1 else "ArrowRight")
    page.wait_for_url(re.compile(rf"[?&]r={start - 1 if start > 1 else start + 1}(&|$)"), timeout=15_000)
    settle(page)
    assert heading(page).startswith("4 ·")
    page.keyboard.press("Escape")
    page.keyboard.press("ArrowRight")
    wait_heading(page, "5 ·")


def test_focus_is_visible_on_the_top_navigation_links(page, app_url):
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{app_url}/")
    settle(page)
    page.keyboard.press("Tab")  # a keyboard user: focus rings show (":focus-visible")
    links = page.locator("[data-testid='stTopNavLink']")
    assert links.count() >= 2
    links.nth(1).focus()
    style = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
      return {testid: document.activeElement.dataset.testid, style: s.outlineStyle, width: parseFloat(s.outlineWidth),
              colour: s.outlineColor}; }""")
    assert style["testid"] == "stTopNavLink"
    assert style["style"] == "solid" and style["width"] >= 2
    rgb = [int(c) for c in re.findall(r"\d+", style["colour"])[:3]]
    from lora_app.figures.base import contrast
    assert contrast(rgb, (255, 255, 255)) >= 3  # against the page behind the ring


# --- touch --------------------------------------------------------------------------------------------

def test_a_tap_on_a_cell_of_q_opens_its_breakdown(browser, app_url):
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.goto(f"{app_url}/?view=q")
    settle(page)
    chart = page.locator("[data-testid='stPlotlyChart']").filter(has=page.locator(".gtitle", has_text="Q = X·(W_Q + ΔW_Q)"))
    cell = chart.locator(".textpoint text", has_text="0.449").first
    cell.scroll_into_view_if_needed()
    box = cell.bounding_box()
    page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url(re.compile(r"view=cell"), timeout=20_000)
    settle(page)
    assert page.get_by_label("row i of Q").input_value() == "2"
    assert page.get_by_label("column j of Q").input_value() == "2"
    context.close()
