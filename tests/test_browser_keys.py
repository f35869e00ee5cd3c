"""No key press is lost: presses that arrive while a rerun is in flight are applied after it.

Streamlit merges the button shortcuts that arrive while the script runs (two presses, one trigger), so
the screen component (lora_app/widgets/screen.py) counts the stepper's and the slides' keys in the browser and
the server applies every press it has not applied yet. Each test presses a key five times, faster than
a rerun, and checks that five moves were made, no more and no fewer.
"""
from __future__ import annotations

import re

import pytest

from helpers import reruns_asked, wait_idle, wait_keys, wait_server

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("navigation_ready")]

# 100 ms apart (a clicker pressed in a hurry) in the default run; 300 ms, the same test at an easier pace, in
# CI's `-m matrix` run with the other cases that add no new path
GAPS_MS = [pytest.param(300, marks=pytest.mark.matrix), 100]


def settle(page, asked_after: int | None = None, timeout: int = 30_000) -> None:
    """Every key press has been sent and applied by a run of the server, and that run is over.

    ``asked_after`` (helpers.reruns_asked before a button is pressed): the button's own rerun is over too.
    """
    wait_idle(page, timeout)
    wait_server(page, asked_after=asked_after, timeout=timeout)
    wait_keys(page, timeout)


def heading(page) -> str:
    return page.locator("h3", has_text=re.compile(r"^Step \d+ of \d+")).first.inner_text()


def step_and_stage(page) -> tuple[int, str]:
    m = re.match(r"Step (\d+) of \d+ · (\S)", heading(page))
    return int(m.group(1)), m.group(2)


def playing(page) -> bool:
    """The play button reads Pause (its label also holds an icon's name and the shortcut's hint)."""
    label = page.evaluate("() => document.querySelector('.st-key-play button').innerText")
    assert "Play" in label or "Pause" in label, label
    return "Pause" in label


def press(page, key: str, times: int, gap_ms: int) -> None:
    for i in range(times):
        page.keyboard.press(key)
        if i < times - 1:
            page.wait_for_timeout(gap_ms)


def open_training(page, app_url, query: str = "") -> None:
    page.goto(f"{app_url}/training?view=step{query}")
    wait_idle(page)
    page.wait_for_selector("h3:has-text('Step ')")
    settle(page)
    page.locator("h1").click()  # the page has the keys, not a widget


@pytest.mark.parametrize("gap_ms", GAPS_MS)
def test_five_presses_of_n_make_five_steps(page, app_url, gap_ms):
    open_training(page, app_url)
    assert step_and_stage(page) == (1, "①")
    press(page, "n", 5, gap_ms)
    settle(page)
    assert step_and_stage(page) == (6, "①")
    assert re.search(r"[?&]step=6(&|$)", page.url)


@pytest.mark.parametrize("gap_ms", GAPS_MS)
def test_five_presses_of_the_right_arrow_make_five_stages(page, app_url, gap_ms):
    open_training(page, app_url, "&step=3&stage=loss")
    assert step_and_stage(page) == (3, "②")
    press(page, "ArrowRight", 5, gap_ms)  # loss → backward → adamw → update → step 4 forward → loss
    settle(page)
    assert step_and_stage(page) == (4, "②")
    press(page, "ArrowLeft", 3, gap_ms)   # loss → forward → step 3 update → adamw
    settle(page)
    assert step_and_stage(page) == (3, "④")


@pytest.mark.parametrize("gap_ms", GAPS_MS)
def test_p_pressed_four_times_ends_paused_and_five_times_plays(page, app_url, gap_ms):
    open_training(page, app_url)
    press(page, "p", 4, gap_ms)
    settle(page)
    assert not playing(page)
    paused_at = step_and_stage(page)[0]
    page.wait_for_timeout(1500)  # more than two play intervals: it does not play
    assert step_and_stage(page)[0] == paused_at

    press(page, "p", 5, gap_ms)
    page.wait_for_function("() => /Pause/.test(document.querySelector('.st-key-play button')?.innerText)", timeout=15_000)
    page.wait_for_function("s => Number(/Step (\\d+) of/.exec(document.querySelector('h3')?.innerText)?.[1]) >= s",
                           arg=paused_at + 2, timeout=20_000)  # it plays
    page.keyboard.press("p")
    page.wait_for_function("() => /Play/.test(document.querySelector('.st-key-play button')?.innerText)", timeout=15_000)
    settle(page)
    stopped_at = step_and_stage(page)[0]
    page.wait_for_timeout(1500)  # a window, not a wait: more than two play intervals, and it does not play
    assert step_and_stage(page)[0] == stopped_at


def test_home_pressed_after_queued_presses_resets_after_them(page, app_url):
    """N N Home, faster than the reruns: the keys apply in the order they were pressed, so it ends at step 1."""
    open_training(page, app_url, "&step=4&stage=loss")
    for key in ["n", "n", "Home"]:
        page.keyboard.press(key)
        page.wait_for_timeout(60)
    settle(page)
    assert step_and_stage(page) == (1, "①")
    press(page, "n", 2, 60)
    settle(page)
    assert step_and_stage(page) == (3, "①")


def test_a_single_press_and_a_focused_button_move_exactly_once(page, app_url):
    """Neither the button's own shortcut nor Enter on the focused button adds a second move."""
    open_training(page, app_url)
    page.keyboard.press("n")
    settle(page)
    assert step_and_stage(page) == (2, "①")
    step_button = page.get_by_role("button", name=re.compile(r"^\S*\s*Step"))
    step_button.focus()
    asked = reruns_asked(page)
    page.keyboard.press("Enter")
    settle(page, asked)
    assert step_and_stage(page) == (3, "①")
    page.keyboard.press("n")  # N with the button focused: one step
    settle(page)
    assert step_and_stage(page) == (4, "①")
    asked = reruns_asked(page)
    page.get_by_role("button", name=re.compile("Next")).click()  # the mouse still works
    settle(page, asked)
    assert step_and_stage(page) == (4, "②")
    page.get_by_role("button", name=re.compile("Next")).focus()
    asked = reruns_asked(page)
    page.keyboard.press(" ")
    settle(page, asked)
    assert step_and_stage(page) == (4, "③")


def test_keys_typed_in_a_number_field_do_not_move(page, app_url):
    open_training(page, app_url, "&step=2&stage=loss")
    field = page.locator(".st-key-lr input")
    field.click()
    for key in ["ArrowRight", "ArrowLeft", "n", "p", "ArrowRight"]:
        page.keyboard.press(key)
        page.wait_for_timeout(100)
    page.keyboard.press("Escape")  # leave the field without changing lr (it was never submitted)
    settle(page)
    assert step_and_stage(page) == (2, "②")
    assert not playing(page)


@pytest.mark.parametrize("gap_ms", GAPS_MS)
@pytest.mark.parametrize("key,back", [("ArrowRight", "ArrowLeft"), ("PageDown", "PageUp")])
def test_five_slide_keys_move_five_slides(page, app_url, gap_ms, key, back):
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{app_url}/present?slide=1")
    wait_idle(page)
    settle(page)
    page.locator("h1").click()
    press(page, key, 5, gap_ms)
    settle(page)
    assert page.locator("h1").first.inner_text().startswith("6 ·")
    press(page, back, 3, gap_ms)
    settle(page)
    assert page.locator("h1").first.inner_text().startswith("3 ·")
    assert re.search(r"[?&]slide=3(&|$)", page.url)


@pytest.mark.parametrize("path", ["/training?view=step&lr=abc", "/present?slide=abc"])
def test_a_notice_stays_through_the_reruns_of_the_page_opening(page, app_url, path):
    """Announcing where the key count starts is not the user acting: the link's notice is still there."""
    page.goto(f"{app_url}{path}")
    wait_idle(page)
    settle(page)
    page.wait_for_timeout(1500)  # a window, not a wait: a rerun that came now must keep the notice too
    assert page.locator("[data-testid='stAlertContentWarning']").count() >= 1
    assert "abc" in page.locator("[data-testid='stAlertContentWarning']").first.inner_text()
