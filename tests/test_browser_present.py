"""The Present page in Chromium: a clicker's keys move the slides, and the URL reopens the same slide."""
import re

import pytest

from helpers import wait_idle

pytestmark = pytest.mark.browser


def heading(page):
    return page.locator("h1").first.inner_text()


def press_and_wait(page, key, title_start):
    page.keyboard.press(key)
    page.wait_for_function("t => document.querySelector('h1') && document.querySelector('h1').innerText.startsWith(t)",
                           arg=title_start, timeout=20_000)
    wait_idle(page)


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


def test_a_slide_link_reopens_that_slide_in_a_new_page(page, app_url, browser):
    page.goto(f"{app_url}/present?slide=9&font=XL")
    wait_idle(page)
    assert heading(page).startswith("9 · Where LoRA goes")
    other = browser.new_page()
    other.goto(page.url)
    wait_idle(other)
    assert heading(other).startswith("9 · Where LoRA goes")
    other.wait_for_selector(".gtitle:has-text('with LoRA on W_Q, W_V')")
    other.close()
