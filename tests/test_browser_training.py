"""The Training page in Chromium: the arrow keys drive the stage stepper, and each stage draws its heatmaps."""
import re

import pytest

from helpers import chart_texts, wait_idle

pytestmark = pytest.mark.browser


def stage_heading(page):
    return page.locator("h3", has_text=re.compile(r"^Step \d+ of \d+")).first.inner_text()


def test_right_arrow_advances_the_stage_and_its_heatmaps_appear(page, app_url):
    page.goto(f"{app_url}/training")
    wait_idle(page)
    page.wait_for_selector(".gtitle:has-text('target T (3×3)')")
    assert "① Forward pass" in stage_heading(page)
    assert chart_texts(page, "Q (3×3)") == ["0.161", "0.190", "0.306", "0.232", "0.449", "0.369",
                                            "0.333", "0.291", "0.401"]

    page.locator("h1").click()  # focus the page, not a widget, as a presenter would
    for stage, chart in [("② Loss", "Q − T (3×3)"), ("③ Backward pass", "∂L/∂A_Q (5×2)"),
                         ("④ AdamW", "v̂ (A) (5×2)"), ("⑤ The new A_Q", "new B_Q (2×3)")]:
        page.keyboard.press("ArrowRight")
        page.wait_for_selector(f"h3:has-text('{stage}')", timeout=20_000)
        page.wait_for_selector(f".gtitle:has-text('{chart}')", timeout=20_000)
        wait_idle(page)
        assert page.locator("[data-testid='stException']").count() == 0
    assert re.search(r"[?&]stage=update(&|$)", page.url)

    page.keyboard.press("ArrowRight")  # past the last stage: the next step's forward pass
    page.wait_for_selector("h3:has-text('Step 2 of 300 · ① Forward pass')", timeout=20_000)
    page.keyboard.press("ArrowLeft")
    page.wait_for_selector("h3:has-text('Step 1 of 300 · ⑤')", timeout=20_000)


def test_the_adapter_of_the_shown_step_downloads_and_loads(page, app_url, tmp_path):
    """The zip is made on the click (nothing is sent while scrubbing), and it holds that step's A and B."""
    import torch

    from lora_core import adamw_trace, load_peft_adapter_zip, make_target, seed_example
    page.goto(f"{app_url}/training?step=7")
    wait_idle(page)
    page.wait_for_selector("h3:has-text('Step 7 of 300')")
    with page.expect_download() as info:
        page.get_by_role("button", name=re.compile("after step 7 as a PEFT adapter")).click()
    path = tmp_path / "adapter.zip"
    info.value.save_as(path)
    loaded = load_peft_adapter_zip(path.read_bytes(), d=5, k=3)
    A, B = loaded.A, loaded.B
    X, W, A0, B0 = seed_example()
    trace = adamw_trace(X, W, A0, B0, make_target(X, W, 1, seed=0), steps=7, lr=0.02, weight_decay=0.01)
    torch.testing.assert_close(A.to(torch.float64), trace[6].A, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(B.to(torch.float64), trace[6].B, rtol=1e-6, atol=1e-7)
