"""The Explore page in real headless Chromium: numbers on the heatmaps, the r slider, the URL."""
import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from helpers import chart_texts, wait_chart_change, wait_idle
from lora_app import text

pytestmark = pytest.mark.browser

Q_LORA_TEXT = ["0.161", "0.190", "0.306", "0.232", "0.449", "0.369", "0.333", "0.291", "0.401"]
Q_BASE_TEXT = ["0.13", "0.14", "0.28", "0.17", "0.35", "0.32", "0.29", "0.22", "0.36"]


def open_app(page, url, query=""):
    page.goto(f"{url}/{query}")
    wait_idle(page)
    page.wait_for_selector("[data-testid='stPlotlyChart'] .textpoint text")


def slider(page, label):
    return page.locator("[data-testid='stSlider']").filter(has_text=label).locator("input[type='range']")


def open_tab(page, label):
    """Click a part's tab, as a person would, and wait for the run that draws the part.

    The tab is selected in the browser at once, before the server has run anything; that run writes the part
    into the URL, so the URL is what says it has begun (an idle page seen earlier may be the idle before it:
    on a busy machine the part's text was not there yet).
    """
    view = next(key for key, name in text.EXPLORE_SECTIONS.items() if name.startswith(label))
    page.get_by_role("tab", name=label).click()
    page.wait_for_url(re.compile(rf"[?&]view={view}(&|$)"))
    wait_idle(page)


def test_seed_numbers_are_on_the_heatmaps_and_r_changes_q(page, app_url):
    open_app(page, app_url)
    # the first part: the four matrices, and nothing else drawn
    assert chart_texts(page, "A_Q (5×2)") == ["0.1", "0.0", "0.2", "0.1", "0.1", "0.0", "0.0", "0.2", "0.1", "0.1"]
    assert page.locator(".gtitle", has_text="Q = X·W_Q").count() == 0

    open_tab(page, "3 · Q without and with LoRA")
    page.wait_for_selector(".gtitle:has-text('Q = X·W_Q')")
    assert chart_texts(page, "Q = X·W_Q") == Q_BASE_TEXT
    assert chart_texts(page, "Q = X·(W_Q + ΔW_Q)") == Q_LORA_TEXT
    assert re.search(r"[?&]view=q(&|$)", page.url)

    r = slider(page, "LoRA rank")
    r.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_url(re.compile(r"[?&]r=3(&|$)"))
    wait_idle(page)
    wait_chart_change(page, "Q = X·(W_Q + ΔW_Q)", Q_LORA_TEXT)
    changed = chart_texts(page, "Q = X·(W_Q + ΔW_Q)")
    assert len(changed) == 9 and changed != Q_LORA_TEXT
    assert chart_texts(page, "Q = X·W_Q") == Q_BASE_TEXT  # the frozen path does not move

    open_tab(page, "1 · The matrices")
    page.wait_for_selector(".gtitle:has-text('A_Q (5×3)')")
    open_tab(page, "5 · Why it works")
    assert page.get_by_text("16 numbers, where full fine-tuning trains 15").count() == 1
    assert page.locator("[data-testid='stException']").count() == 0


def test_a_shared_link_reopens_the_view_and_bad_values_get_a_notice(page, app_url):
    open_app(page, app_url, "?preset=seed&d=6&k=4&r=3&alpha=3&n=2")
    assert page.locator(".gtitle", has_text="A_Q (6×3)").count() == 1
    assert page.locator(".gtitle", has_text="X (2×6)").count() >= 1
    open_app(page, app_url, "?r=999&d=abc")
    alerts = page.locator("[data-testid='stAlert']").all_inner_texts()
    assert any("r = 999" in a for a in alerts) and any("d = abc" in a for a in alerts)
    assert page.locator(".gtitle", has_text="A_Q (5×3)").count() == 1
    assert page.locator("[data-testid='stException']").count() == 0


def test_clicking_a_cell_of_q_breaks_it_down(page, app_url):
    open_app(page, app_url, "?view=q")
    chart = page.locator("[data-testid='stPlotlyChart']").filter(
        has=page.locator(".gtitle", has_text="Q = X·(W_Q + ΔW_Q)")).first
    cell = chart.locator(".textpoint text", has_text="0.449")
    cell.scroll_into_view_if_needed()
    box = cell.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    row, col = page.get_by_label("row i of Q"), page.get_by_label("column j of Q")
    page.wait_for_function("([r, c]) => r.value === '2' && c.value === '2'",
                           arg=[row.element_handle(), col.element_handle()], timeout=15_000)
    wait_idle(page)
    assert page.locator(".katex", has_text="0.449").count() >= 1
    assert re.search(r"[?&]view=cell(&|$)", page.url)  # the click opened the breakdown


# the cell numbers of the first chart whose title holds ``title`` (as chart_texts finds it) are no longer ``old``
CELLS_CHANGED = """([title, old]) => { const c = [...document.querySelectorAll("[data-testid='stPlotlyChart']")]
  .find(c => [...c.querySelectorAll('.gtitle')].some(t => t.textContent.includes(title)));
  return !!c && [...c.querySelectorAll('g.textpoint text')].map(e => e.textContent).join() !== old; }"""


def table_cell(page, row: int, col: int):
    """Where a table cell of the open editor is (row and col from 1): its centre, for a click."""
    grid = page.locator("[data-testid='stDataFrame']:visible").first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    header, row_h = 35, 35  # the grid's fixed row height at the default text size
    first_col = 50          # the index column
    col_w = (box["width"] - first_col) / 3
    return box["x"] + first_col + col_w * (col - 0.5), box["y"] + header + row_h * (row - 0.5)


def type_in_cell(page, row: int, col: int, text: str, done, tries: int = 3) -> None:
    """Click a cell of the open table and type into it, as a person would, until ``done(timeout)`` sees it arrive.

    The grid is a canvas that takes a moment to accept keys after it appears; a click that came too
    early selects nothing, and the typing goes nowhere. The click has landed once the grid's own
    accessible table shows that cell selected and focused. The first key opens the cell's editor (a
    text box in the grid's portal), and on a busy machine a key can come before the box is there and
    be lost; so, as a person who watches the box, the test waits for it, types the whole text over
    what it holds, and presses Enter only once the box shows exactly that text.
    """
    page.locator("[data-testid='stDataFrame']:visible canvas").first.wait_for()
    cell = f"glide-cell-{col}-{row - 1}"  # the grid's accessible table: the index is column 0, rows from 0
    editor = "#portal textarea.gdg-input"
    for _ in range(tries):
        wait_idle(page)
        page.mouse.click(*table_cell(page, row, col))
        try:
            page.wait_for_function("id => { const e = document.activeElement;"
                                   " return !!e && e.id === id && e.getAttribute('aria-selected') === 'true'; }",
                                   arg=cell, timeout=5_000)
            page.keyboard.type(text[0])
            page.wait_for_function("s => document.activeElement && document.activeElement.matches(s)",
                                   arg=editor, timeout=5_000)
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            continue  # the click selected nothing, or the editor never opened: click again
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.type(text, delay=30)
        if page.locator(editor).input_value() != text:
            page.keyboard.press("Escape")  # a key went astray: leave the cell as it was and try again
            continue
        page.keyboard.press("Enter")
        try:
            done(10_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError(f"typing {text!r} into cell ({row}, {col}) never reached the page")


def open_w_q_editor(page, app_url) -> None:
    open_app(page, app_url)
    page.get_by_text("Edit the matrices").click()
    wait_idle(page)
    page.get_by_role("tab", name="W_Q").click()
    wait_idle(page)


def test_text_in_a_cell_is_refused_by_name_and_a_number_typed_with_an_exponent_means_what_it_says(page, app_url):
    """In the one cell W_Q[2, 1], as a student would: text first (refused, the cell keeps its value), then numbers."""
    open_w_q_editor(page, app_url)
    type_in_cell(page, 2, 1, "1e3e3",
                 done=lambda timeout: page.wait_for_selector("[data-testid='stAlertContentError']", timeout=timeout))
    wait_idle(page)
    page.wait_for_timeout(1500)  # the reruns that follow (the fresh table, the size report) keep the notice
    error = page.locator("[data-testid='stAlertContentError']").first.inner_text()
    assert "W_Q[2, 1]" in error and "1e3e3" in error and "is not a number" in error
    assert chart_texts(page, "W_Q")[3] == "0.0"

    for typed, on_heatmap in (("1e3", "1000.0"),       # Streamlit's number editor stored 13: the e was dropped
                              ("1E6", "1000000.0"),
                              ("-2.5e-4", "−0.000")):  # the cell is too small for more digits; a dropped e: −2.540
        old = chart_texts(page, "W_Q")
        type_in_cell(page, 2, 1, typed, done=lambda timeout: page.wait_for_function(
            CELLS_CHANGED, arg=["W_Q", ",".join(old)], timeout=timeout))
        wait_idle(page)
        assert not page.locator("[data-testid='stAlertContentError']").count(), typed  # a good number: the notice has gone
        assert chart_texts(page, "W_Q")[3] == on_heatmap, typed  # row 2, column 1 of the 5×3 W_Q
