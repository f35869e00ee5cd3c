"""The Adapters page in Chromium: a PEFT adapter zipped and uploaded is read, drawn on its layers × types grid, and a
click on a cell opens that module; a file that is no adapter is refused with its reason and nothing else changes."""
from __future__ import annotations

import io
import zipfile

import pytest
from reader_memory import tiny_gpt2_adapter

from helpers import wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("navigation_ready")]


def _gpt2_adapter_zip(tmp_path) -> bytes:
    tiny_gpt2_adapter(tmp_path / "gpt2", ["c_attn", "c_fc"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            zf.write(tmp_path / "gpt2" / name, f"gpt2-lora/{name}")
    return buf.getvalue()


def test_an_uploaded_adapter_is_drawn_and_a_cell_opens_its_module(page, app_url, tmp_path):
    page.set_viewport_size({"width": 1366, "height": 1000})
    page.goto(f"{app_url}/adapters?view=overview")
    wait_idle(page)
    page.get_by_text("Upload an adapter").click()
    uploaders = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    uploaders.nth(0).set_input_files(files=[{"name": "gpt2-lora.zip", "mimeType": "application/zip",
                                            "buffer": _gpt2_adapter_zip(tmp_path)}])
    page.get_by_text("gpt2-lora.zip").wait_for(timeout=15_000)
    wait_idle(page)
    page.get_by_label("Adapter", exact=True).click()
    page.get_by_role("option", name="your upload 1").click()
    page.get_by_text("4 adapted matrices at r = 4").wait_for(timeout=15_000)
    assert "ad_first=upload%3A1" in page.url or "ad_first=upload:1" in page.url
    chart = page.locator("[data-testid='stPlotlyChart']").filter(
        has=page.locator(".gtitle", has_text="of each adapted matrix")).first
    # the grid is 2 layers × 2 types, its numbers row by row: the last is layer 1's mlp.c_fc
    cell = chart.locator(".textpoint text").nth(3)
    cell.scroll_into_view_if_needed()
    box = cell.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url("**view=module**", timeout=15_000)
    wait_idle(page)
    assert "view=module" in page.url and "ad_module=transformer.h.1.mlp.c_fc" in page.url
    assert page.get_by_text("Singular values of ΔW = s·A·B: transformer.h.1.mlp.c_fc").first.is_visible()


def test_a_file_that_is_no_adapter_is_refused_with_its_reason(page, app_url):
    page.set_viewport_size({"width": 1366, "height": 1000})
    page.goto(f"{app_url}/adapters?view=overview")
    wait_idle(page)
    page.get_by_text("Upload an adapter").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').nth(1).set_input_files(
        files=[{"name": "<b>notes</b>.json", "mimeType": "application/json", "buffer": b"{}"}])
    alert = page.get_by_text("Upload 2 was not read")
    alert.wait_for(timeout=15_000)   # the upload's rerun may start after the page looked idle
    assert "<b>notes</b>.json" in alert.inner_text()  # the name shown as typed, not as markup


def test_an_upload_above_the_servers_old_17_mb_cap_is_read(page, app_url, tmp_path):
    """Streamlit's server refuses any body above server.maxUploadSize whatever a widget says: it is the Adapters
    page's 512 MB, so a 40 MB adapter (eight Llama-2-7B-shaped layers, float32, stored) arrives and is read."""
    from reader_memory import llama_shaped, zipped
    z = zipped(llama_shaped(tmp_path / "big", layers=8, r=16, dtype="float32"), tmp_path / "big.zip", compress=False)
    assert z.stat().st_size > 17 * 2**20
    page.set_viewport_size({"width": 1366, "height": 1000})
    page.goto(f"{app_url}/adapters?view=overview")
    wait_idle(page)
    page.get_by_text("Upload an adapter").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').nth(0).set_input_files(str(z))
    page.get_by_role("button", name="Remove big.zip").wait_for(timeout=60_000)   # shown once the upload is done
    wait_idle(page)
    page.get_by_label("Adapter", exact=True).click()
    page.get_by_role("option", name="your upload 1").click()
    page.get_by_text("56 adapted matrices at r = 16").wait_for(timeout=60_000)
