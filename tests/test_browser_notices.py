"""One way to tell the user, and one way to hear them: in Chromium, with the machine busy.

A notice stays on screen until the user acts: the reruns that follow a page opening (the browser's
report of its size, a key log sent again, a fresh table registering) are not the user acting
(lora_app/widgets/notices.py). A key press counts from the moment the page is drawn: the key handler
does not wait for the size report (lora_app/widgets/screen.py). Each test keeps both cores spinning
while it runs, as a class's server would be.
"""
from __future__ import annotations

import re
import subprocess
import sys
from contextlib import contextmanager

import pytest

from helpers import IDLE

# busy: they run alone (`python -m pytest -n 0 -m busy`, after the default run): the load is theirs to set
pytestmark = [pytest.mark.browser, pytest.mark.busy, pytest.mark.usefixtures("navigation_ready")]

BURN_S = 240  # an upper bound: the burner stops with the test, or by itself after this long
WARNING = "[data-testid='stAlertContentWarning']"
INFO = "[data-testid='stAlertContentInfo']"


@contextmanager
def busy(cores: int = 2):
    """Both cores spinning for the length of the block (and never longer than BURN_S)."""
    code = f"import time\nend = time.time() + {BURN_S}\nwhile time.time() < end:\n    pass\n"
    burners = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(cores)]
    try:
        yield
    finally:
        for proc in burners:
            proc.kill()
            proc.wait()


def drawn(page, text: str, timeout: int = 60_000) -> None:
    """The page is drawn: ``text`` is on screen and the script is not running (the size report may not have come)."""
    page.wait_for_selector(f"text={text}", timeout=timeout)
    page.wait_for_selector(IDLE, timeout=timeout)


def settled(page, quiet_ms: int = 1000, timeout: int = 60_000) -> None:
    """The size report and every key press have been sent and applied, and the app stayed idle for ``quiet_ms``."""
    page.evaluate("() => { window.__quietSince = null; }")
    page.wait_for_function(
        """(quiet) => {
          const idle = !!document.querySelector("[data-testid='stApp'][data-test-script-state='notRunning']");
          const d = document.documentElement.dataset;
          const done = idle && !!d.loraScreen && d.loraKeysPending === '0';
          const now = Date.now();
          if (!done) { window.__quietSince = null; return false; }
          window.__quietSince = window.__quietSince || now;
          return now - window.__quietSince >= quiet;
        }""", arg=quiet_ms, polling=100, timeout=timeout)


def notice_texts(page, selector: str) -> list[str]:
    return page.locator(selector).all_inner_texts()


def test_attentions_clamp_notes_stay_after_the_page_settles(page, app_url):
    with busy():
        page.goto(f"{app_url}/attention?k=1024&heads=4")
        drawn(page, "Put an adapter on")
        settled(page)
        # the note is there once the page has settled, and still there 3 s later (no rerun took it away)
        page.wait_for_selector(INFO + ":has-text('heads of width k = 1024')", timeout=10_000)
        page.wait_for_timeout(3000)
        assert any("heads of width k = 1024" in t and "using 1." in t for t in notice_texts(page, INFO)), \
            notice_texts(page, INFO)


def test_ten_tabs_opening_a_bad_slide_each_show_their_notice(browser, app_url):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        with busy():
            tabs = [context.new_page() for _ in range(10)]
            for tab in tabs:  # all at once: none waits for another to load
                tab.goto(f"{app_url}/present?slide=0", wait_until="commit")
            for tab in tabs:
                drawn(tab, "Slide 1 of", timeout=120_000)
            for tab in tabs:
                settled(tab, timeout=120_000)
            tabs[0].wait_for_timeout(3000)  # longer than the key log's safety net waits before sending it again
            for i, tab in enumerate(tabs):
                shown = notice_texts(tab, WARNING)
                assert any("slide = `0`" in t.replace("\u2060", "") or "slide = 0" in t.replace("\u2060", "")
                           for t in shown), (i, shown)
    finally:
        context.close()


def step_and_stage(page) -> tuple[int, str]:
    text = page.locator("h3", has_text=re.compile(r"^Step \d+ of \d+")).first.inner_text()
    m = re.match(r"Step (\d+) of \d+ · (\S)", text)
    return int(m.group(1)), m.group(2)


@pytest.mark.parametrize("reporter", ["late", "as it comes"])
@pytest.mark.parametrize("attempt", [0, 1, 2])  # the same race three times over
def test_five_presses_of_n_right_after_the_page_is_drawn_make_five_steps(page, app_url, attempt, reporter):
    """Five presses of N, 300 ms apart, from 0.6 s after the stepper is drawn: step 6, every time.

    "late": the reporter's code (the size report's) reaches the browser only after the last press, as
    on a busy machine where it came 1-2.5 s after the page was drawn; the presses must not wait for it.
    """
    held = []
    if reporter == "late":
        page.route("**/BidiComponent.*.js", lambda route: held.append(route))
    with busy():
        page.goto(f"{app_url}/training?view=step")
        drawn(page, "Step 1 of")
        page.wait_for_selector(".st-key-stepper button:has-text('Step')", timeout=60_000)  # the button N presses
        page.wait_for_timeout(600)  # a student who starts pressing as soon as the stepper is on screen
        for i in range(5):
            page.keyboard.press("n")
            if i < 4:
                page.wait_for_timeout(300)
        if reporter == "late":
            while not held:  # requested with the page's first run; let it through now
                page.wait_for_timeout(100)
            for route in held:
                route.continue_()
        settled(page)
        assert step_and_stage(page) == (6, "①")
        assert re.search(r"[?&]step=6(&|$)", page.url)
