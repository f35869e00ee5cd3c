"""Links that reopen a view: change controls in one tab, open its URL in a fresh tab, see the same figures."""
import pytest

from helpers import reruns_asked, wait_idle, wait_server

pytestmark = pytest.mark.browser

FIGURE_TEXT = """() => [...document.querySelectorAll("[data-testid='stPlotlyChart']")].map(c => {
  const t = c.querySelector('.gtitle'); const cells = [...c.querySelectorAll('.textpoint text')].map(e => e.textContent);
  return (t ? t.textContent : '') + '|' + cells.join(',');
})"""


def figures_shown(page) -> list[str]:
    page.wait_for_selector("[data-testid='stPlotlyChart'] .main-svg")
    wait_idle(page)
    return page.evaluate(FIGURE_TEXT)


def slider(page, label):
    return page.locator("[data-testid='stSlider']").filter(has_text=label).locator("input[type='range']")


def press(page, locator, key, times=1):
    locator.focus()
    for _ in range(times):
        asked = reruns_asked(page)
        page.keyboard.press(key)
        wait_server(page, asked_after=asked)  # the slider's rerun is over


def reopen(page, url) -> list[str]:
    """What ``url`` shows in a new tab: a session of its own on the server, which has only the URL to go on."""
    fresh = page.context.new_page()
    fresh.goto(url)
    shown = figures_shown(fresh)
    fresh.close()
    return shown


def test_explore_controls_survive_a_reload_in_a_new_tab(page, app_url):
    page.goto(app_url)
    figures_shown(page)
    press(page, slider(page, "d: input width"), "ArrowRight", 2)
    press(page, slider(page, "n: tokens"), "ArrowRight")
    press(page, slider(page, "LoRA rank"), "ArrowRight")
    page.wait_for_selector(".gtitle:has-text('A_Q (7×3)')")
    mine = figures_shown(page)
    assert any(t.startswith("X (4×7)") for t in mine)
    assert reopen(page, page.url) == mine


def test_training_step_and_stage_survive_a_reload(page, app_url):
    page.goto(f"{app_url}/training")
    figures_shown(page)
    page.locator("h1").click()
    # five stages, then into step 2 and on to its backward pass
    for expected in ("1 of 300 · ②", "1 of 300 · ③", "1 of 300 · ④", "1 of 300 · ⑤", "2 of 300 · ①",
                     "2 of 300 · ②", "2 of 300 · ③"):
        page.keyboard.press("ArrowRight")
        page.wait_for_selector(f"h3:has-text('Step {expected}')", timeout=20_000)
        wait_idle(page)
    mine = figures_shown(page)
    assert "stage=backward" in page.url and "step=2" in page.url
    assert reopen(page, page.url) == mine


def test_scale_model_and_targets_survive_a_reload(page, app_url):
    page.goto(f"{app_url}/scale?model=llama-3-8b&targets=q,k,v,o&scale_r=16")
    mine = figures_shown(page)
    assert page.get_by_text("Llama-3-8B").count() >= 1
    assert reopen(page, page.url) == mine
