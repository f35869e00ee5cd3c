"""The Attention, Rank and Scale pages in real headless Chromium: each renders, and a control changes a figure."""
import re

import pytest

from helpers import chart_texts, reruns_asked, wait_chart_change, wait_idle, wait_server

# navigation_ready (conftest): until a session has run app.py (and its st.navigation), a fresh server maps
# /attention straight to pages/attention.py without the sidebar; see the report that came with these pages
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("navigation_ready")]


def open_page(page, url, path, title):
    page.goto(f"{url}/{path}")
    wait_idle(page)
    page.wait_for_selector(f".gtitle:has-text('{title}')")


def no_exception(page):
    assert page.locator("[data-testid='stException']").count() == 0


def test_attention_renders_and_an_adapter_on_w_k_moves_the_weights(page, app_url):
    open_page(page, app_url, "attention?view=change", "weights with LoRA")
    assert page.get_by_text("Where LoRA goes: inside one attention layer").count() == 1
    without, before = chart_texts(page, "weights without LoRA"), chart_texts(page, "weights with LoRA")
    assert len(before) == 9 and before != without  # LoRA on q already shifts the weights
    page.get_by_text("W_K (key)").click()
    page.wait_for_url(re.compile(r"[?&]lora=q%2Ck%2Cv(&|$)|[?&]lora=q,k,v(&|$)"))
    wait_idle(page)
    wait_chart_change(page, "weights with", before)
    after = chart_texts(page, "weights with LoRA")
    assert len(after) == 9 and after != before
    assert chart_texts(page, "weights without LoRA") == without  # the frozen model does not move
    assert re.search(r"[?&]lora=q%2Ck%2Cv(&|$)|[?&]lora=q,k,v(&|$)", page.url)
    no_exception(page)


def test_rank_renders_and_the_decay_slider_changes_the_target(page, app_url):
    open_page(page, app_url, "rank", "Singular values of ΔW")  # the first part: ΔW's spectrum
    open_page(page, app_url, "rank?view=copy", "ΔW* (the update wanted)")
    before = chart_texts(page, "ΔW* (the update wanted)")
    assert len(before) == 15
    slider = page.locator("[data-testid='stSlider']").filter(has_text="decay").locator("input[type='range']")
    slider.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_url(re.compile(r"decay=1\.25"))
    wait_idle(page)
    wait_chart_change(page, "ΔW* (the", before)
    after = chart_texts(page, "ΔW* (the update wanted)")
    assert len(after) == 15 and after != before
    no_exception(page)


def test_scale_renders_the_papers_figure_and_a_target_changes_the_count(page, app_url):
    open_page(page, app_url, "scale", "Training memory of GPT-3 175B")
    assert page.get_by_text("18,874,368", exact=True).count() == 1
    assert page.locator("[data-testid='stPlotlyChart'] text", has_text="350 GB").count() >= 1
    page.get_by_role("button", name="W_K", exact=True).click()
    page.get_by_text("28,311,552", exact=True).wait_for()  # 96 layers × 3 matrices × 4·(12,288 + 12,288)
    wait_idle(page)
    assert re.search(r"targets=q%2Ck%2Cv|targets=q,k,v", page.url)
    page.get_by_role("button", name="Measure").click()
    page.wait_for_selector(".gtitle:has-text('Measured on this machine')", timeout=30_000)
    wait_idle(page)
    chart = page.locator("[data-testid='stPlotlyChart']").filter(
        has=page.locator(".gtitle", has_text="Measured on this machine"))
    assert chart.locator(".boxlayer .trace").count() == 2
    no_exception(page)


def test_a_long_measurement_shows_progress_and_cancel_stops_it(page, app_url):
    open_page(page, app_url, "scale", "Training memory of GPT-3 175B")
    for label in ("d (rows of W)", "timed steps"):  # the largest layer and the most steps: tens of seconds
        slider = page.locator("[data-testid='stSlider']").filter(has_text=label).locator("input[type='range']")
        slider.focus()
        asked = reruns_asked(page)
        page.keyboard.press("End")
        wait_server(page, asked_after=asked)  # the slider's rerun is over
    page.get_by_role("button", name="Measure").click()
    page.get_by_text(re.compile(r"timed step \d+ of 100")).wait_for(timeout=30_000)
    page.get_by_role("button", name="Cancel").click()
    page.get_by_text("The last measurement was cancelled before it finished.").wait_for(timeout=30_000)
    wait_idle(page)
    assert page.locator(".gtitle:has-text('Measured on this machine')").count() == 0
    no_exception(page)
