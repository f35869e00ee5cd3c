"""The Present page in Chromium: a clicker's keys move the slides, and the URL reopens the same slide."""
import re
from pathlib import Path

import pytest

import helpers
from helpers import reruns_asked, wait_idle, wait_server
from layout_checks import measure, problems
from lora_app.config.present import SLIDES

pytestmark = pytest.mark.browser


def heading(page):
    return page.locator("h1").first.inner_text()


def press_and_wait(page, key, title_start):
    page.keyboard.press(key)
    page.wait_for_function("t => document.querySelector('h1') && document.querySelector('h1').innerText.startsWith(t)",
                           arg=title_start, timeout=20_000)
    wait_idle(page)


def test_the_slides_reached_by_their_link_have_no_sidebar_over_the_buttons(page, app_url):
    """A lecturer on the Explore page clicks Present: the slide fills the window and Next takes the click."""
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{app_url}/?view=matrices")
    helpers.settle(page)
    page.get_by_role("link", name="Present", exact=True).first.click()
    page.wait_for_url(re.compile(r"/present(\?|$)"))
    helpers.settle(page)
    assert not page.locator("[data-testid='stSidebar']").is_visible()  # the Explore page's, left behind, hid the footer
    button = page.locator(".st-key-present_next button")
    box = button.bounding_box()
    on_top = page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('.st-key-present_next') !== null",
                           [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
    assert on_top, "something covers the Next button"
    assert page.locator("h1").first.bounding_box()["x"] < 100  # the slide starts at the window's left, not after a sidebar
    button.click()
    page.wait_for_url(re.compile(r"[?&]slide=2(&|$)"))


def test_arrows_and_clicker_keys_move_through_the_slides(page, app_url):
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(f"{app_url}/present")
    wait_idle(page)
    assert heading(page).startswith("1 · What LoRA does")
    assert page.locator("[data-testid='stSidebar']").count() == 0 or not page.locator(
        "[data-testid='stSidebar']").is_visible()
    page.locator("h1").click()
    press_and_wait(page, "ArrowRight", "2 ·")
    press_and_wait(page, "PageDown", "3 ·")
    press_and_wait(page, "PageDown", "4 ·")
    page.wait_for_selector(".gtitle:has-text('A_Q (5×2)')")
    press_and_wait(page, "PageUp", "3 ·")
    press_and_wait(page, "ArrowLeft", "2 ·")
    assert re.search(r"[?&]slide=2(&|$)", page.url)
    assert page.locator("[data-testid='stException']").count() == 0


def test_a_slide_link_reopens_that_slide_in_a_new_page(page, app_url):
    page.goto(f"{app_url}/present?slide=9&font=XL")
    wait_idle(page)
    assert heading(page).startswith("9 · Where LoRA goes")
    other = page.context.new_page()  # a session of its own: it has only the URL
    other.goto(page.url)
    wait_idle(other)
    assert heading(other).startswith("9 · Where LoRA goes")
    other.wait_for_selector(".gtitle:has-text('with LoRA on W_Q, W_V')")
    other.close()


# --- the real transformer's slides: they fit before, during and after training, and the clicker keeps working ---

ARTIFACTS = Path("/tmp/slides_real")  # screenshots for a person to look at, where that folder exists
REAL = {key: n for n, (key, _) in enumerate(SLIDES, start=1) if key.startswith("real")}
DONE = {"real": "of held-out digits right", "real_grid": "won with", "real_rank": "full fine-tuning ("}


def settle(page, timeout=60_000):
    helpers.settle(page, timeout)


PROGRESS = ("() => Number(document.querySelector(\"[data-testid='stProgress'] [role='progressbar']\")"
            "?.getAttribute('aria-valuenow'))")


def redrawn(page, times: int, timeout=60_000) -> None:
    """The live run's progress bar has moved on ``times`` times (each a redraw of the live slide)."""
    for _ in range(times):
        shown = page.evaluate(PROGRESS)
        page.wait_for_function(f"v => ({PROGRESS})() > v", arg=shown, timeout=timeout)


def open_real_settings(browser, app_url, width, height, seed, steps):
    """A session whose Real model page was set (seed, steps), then on the Present page: widget values carry over."""
    context = browser.new_context(viewport={"width": 1600, "height": 900}, is_mobile=width < 800, has_touch=width < 800)
    page = context.new_page()
    page.goto(f"{app_url}/real?real_seed={seed}&real_steps={steps}")
    settle(page)
    page.locator("[data-testid='stTopNavLink']", has_text="Present").click()
    page.wait_for_function("() => (document.querySelector('h1') || {}).innerText?.startsWith('1 ·')", timeout=20_000)
    asked = reruns_asked(page)
    page.set_viewport_size({"width": width, "height": height})
    wait_server(page, asked_after=asked, timeout=60_000)  # the run that took the new size
    settle(page)
    return context, page


def step_to(page, n):
    page.locator("h1").click()
    while not heading(page).startswith(f"{n} ·"):
        current = int(heading(page).split(" ·")[0])
        press_and_wait(page, "PageDown" if current < n else "PageUp", f"{current + (1 if current < n else -1)} ·")
    settle(page)


@pytest.mark.usefixtures("navigation_ready")
def test_the_real_slides_fit_before_and_after_their_buttons_train_them(browser, app_url):
    """On a projector (1024×768) and a phone (390×844), each Real slide fits before its button is pressed and after.

    The projector's session trains; the phone's, on the same settings, then presses its own button and is shown
    the finished run at once (finished runs are kept on the server for every session: the slides' help says so).
    Each run trains once for both screens.
    """
    screens = {size: open_real_settings(browser, app_url, *size, 7101, 25) for size in ((1024, 768), (390, 844))}
    projector = screens[1024, 768][1]
    found = {}
    for key, button in (("real", "Train now"), ("real_grid", "Run the grid"), ("real_rank", "Run the sweep")):
        for (width, height), (_, page) in screens.items():
            step_to(page, REAL[key])
            found[f"{width}×{height} {key} before"] = problems(measure(page))[:5]
        for page in (projector, *(page for _, page in screens.values() if page is not projector)):
            page.get_by_role("button", name=button).click()
            page.wait_for_function("t => [...document.querySelectorAll('[data-testid=\"stMarkdownContainer\"]')]"
                                   ".some(e => e.innerText.includes(t))", arg=DONE[key], timeout=240_000)
            settle(page)
        for (width, height), (_, page) in screens.items():
            found[f"{width}×{height} {key} after"] = problems(measure(page))[:5]
            assert page.get_by_role("button", name=button).count() == 0  # trained: the button has gone
            assert page.locator("[data-testid='stException']").count() == 0
    for context, _ in screens.values():
        context.close()
    assert not any(found.values()), found


@pytest.mark.usefixtures("navigation_ready")
def test_the_clicker_moves_on_while_a_slide_trains_and_comes_back_to_the_finished_run(browser, app_url):
    # 300 steps: on an idle machine the run takes about 7 s in the app and the presses below 2 s; under load the
    # training thread (niced: a session's rerun goes first) slows more than the presses do
    context, page = open_real_settings(browser, app_url, 1280, 800, 7103, 300)
    step_to(page, REAL["real"])
    page.get_by_role("button", name="Train now").click()  # the button has the focus now
    page.wait_for_selector("[data-testid='stProgress']", timeout=20_000)
    redrawn(page, 2)  # a few redraws of the live curves
    page.screenshot(path=str(ARTIFACTS / "real_live_1280x800.png")) if ARTIFACTS.exists() else None
    assert not problems(measure(page))  # the live slide fits too
    press_and_wait(page, "ArrowRight", f"{REAL['real'] + 1} ·")  # at once: the press does not wait for the run
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("t => document.querySelector('h1') && document.querySelector('h1').innerText.startsWith(t)",
                           arg=f"{REAL['real']} ·", timeout=20_000)
    page.wait_for_selector("[data-testid='stProgress']", timeout=20_000)  # back while it still trains, and followed
    page.wait_for_function("() => /of held-out digits right/.test(document.body.innerText)", timeout=240_000)
    assert page.get_by_role("button", name="Train now").count() == 0
    # the URL is written at the end of the script's run, after the finished slide is drawn: it follows within it
    page.wait_for_url(re.compile(rf"[?&]slide={REAL['real']}(&|$)"), timeout=20_000)
    context.close()
