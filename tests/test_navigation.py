"""lora_app.server.navigation: a deep link opened as a fresh server's very first request still runs inside app.py."""
from __future__ import annotations

import pytest

from helpers import server_log_path, start_streamlit, wait_idle

pytestmark = pytest.mark.browser


def test_a_fresh_servers_first_request_for_a_deep_link_runs_inside_app_py(browser, tmp_path):
    """Without navigation.entry_guard, Streamlit 1.67 runs pages/training.py alone here: no navigation bar,
    no sidebar, and the page's title never appears. With it, the rerun lands on Training inside app.py."""
    log = tmp_path / server_log_path().name
    proc, url = start_streamlit("app.py", log, timeout_s=60)
    try:
        page = browser.new_page()
        page.goto(f"{url}/training")  # nothing has opened / on this server yet
        wait_idle(page)
        page.wait_for_selector("h1:has-text('Training LoRA, one stage at a time')", timeout=30_000)
        assert page.locator("[data-testid='stSidebar']").count() == 1, "the page ran without app.py's sidebar"
        assert page.locator("[data-testid='stTopNavLinkContainer'], [data-testid='stTopNavLink']").count() > 0, \
            "the page ran without app.py's navigation"
        assert page.locator("[data-testid='stException']").count() == 0
        page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
