"""The Real model page in Chromium: a fine-tune's curve grows while it trains, Stop stops it, and a short run finishes.

The runs train on the test server's worker thread; the server's runs folder is a fresh temporary
folder (conftest), so nothing here is served from an earlier run.
"""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from helpers import wait_idle, walk

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("navigation_ready")]

# how many loss points the live chart draws: the LoRA trace of the top (loss) plot, as plotly.js laid it out
LIVE_POINTS = """() => {
  const plots = [...document.querySelectorAll('.stPlotlyChart .js-plotly-plot')];
  const live = plots.find(p => (p.layout?.title?.text || '').includes('Training loss'));
  if (!live || !live._fullData) return -1;
  const lora = live._fullData.find(t => (t.name || '').startsWith('LoRA') && (t.yaxis || 'y') === 'y');
  return lora ? lora._length : 0;
}"""

# true once the live curve has been drawn with three different lengths (each one noted in window.loraLiveSeen)
GROWN = f"""() => {{
  const n = ({LIVE_POINTS})();
  const seen = (window.loraLiveSeen ||= []);
  if (n > 0 && !seen.includes(n)) seen.push(n);
  return seen.length >= 3;
}}"""


def test_the_curve_grows_during_a_run_and_stop_stops_it(page, app_url):
    # 2,000 steps at a seed no other test uses: about 8 s of training, long enough to watch and stop
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{app_url}/real?view=finetune&real_steps=2000&real_seed=9101&real_lora=q,k")
    wait_idle(page)
    page.get_by_role("button", name="Train").click()
    page.wait_for_selector("[data-testid='stProgress']", timeout=20_000)
    try:  # the browser notes each length the live curve is drawn with, until it has seen three
        page.wait_for_function(GROWN, polling=100, timeout=20_000)
    except PlaywrightTimeout:
        pass  # the assertion below says what it saw
    grown = sorted(page.evaluate("() => window.loraLiveSeen || []"))
    assert len(grown) >= 3, f"the live curve did not grow during the run: {grown}"
    assert grown[-1] < 2000, "the run finished before it could be watched"
    page.locator(".st-key-real_stop button").first.click()  # the page's Stop (Streamlit's header has one of its own)
    page.wait_for_selector("text=Stopped after", timeout=20_000)
    wait_idle(page)
    assert page.get_by_role("button", name="Train").count() == 1  # it can be started again
    assert page.locator("[data-testid='stException']").count() == 0
    stopped_at = page.evaluate(LIVE_POINTS)
    assert 0 < stopped_at < 2000
    # nothing trains on: a new session with the same settings is offered Train, not a job in flight, and no
    # result appeared here meanwhile
    other = page.context.new_page()
    other.goto(page.url)
    other.get_by_text("to run these settings: LoRA first").wait_for(timeout=30_000)
    wait_idle(other)
    assert other.get_by_role("button", name="Train").is_enabled()
    other.close()
    assert page.get_by_text("Held-out accuracy on").count() == 0


def test_a_short_run_finishes_and_shows_its_results_and_link(page, app_url):
    page.goto(f"{app_url}/real?view=finetune&real_steps=50&real_seed=9102")
    wait_idle(page)
    page.get_by_role("button", name="Train").click()
    page.wait_for_selector("text=Held-out accuracy on reverse", timeout=60_000)
    wait_idle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    for label in ("Trained numbers", "Adapter on disk (PEFT zip)", "Full fine-tuning's accuracy"):
        assert page.get_by_text(label).count() >= 1
    assert re.search(r"[?&]real_steps=50(&|$)", page.url) and re.search(r"[?&]real_seed=9102(&|$)", page.url)
    # the link reopens the finished run at once, in a new session
    other = page.context.new_page()
    start = time.monotonic()
    other.goto(page.url)
    other.wait_for_selector("text=Held-out accuracy on reverse", timeout=20_000)
    assert other.get_by_role("button", name="Train").count() == 0
    assert time.monotonic() - start < 15
    other.close()


@pytest.mark.parametrize("size", [(1024, 768), (390, 844)], ids=["projector-1024x768", "phone-390x844"])
def test_every_part_fits_the_width_of_a_projector_and_a_phone(page, app_url, size):
    page.set_viewport_size({"width": size[0], "height": size[1]})
    for stop in walk(page, app_url, [f"real?view={view}" for view in ("model", "finetune", "where", "rank", "before")]):
        view = stop.rpartition("=")[2]
        assert page.locator("[data-testid='stException']").count() == 0, view
        wide = page.evaluate("""() => [...document.querySelectorAll('.stPlotlyChart .main-svg')]
            .filter(s => s.getBoundingClientRect().right > window.innerWidth + 1).length""")
        assert wide == 0, f"{view}: a chart runs off a {size[0]} px wide screen"
        overflow = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{view}: the page scrolls sideways by {overflow} px at {size[0]}×{size[1]}"
