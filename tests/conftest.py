"""Shared fixtures: a real `streamlit run app.py` server and Debian's Chromium for the browser tests."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url():
    """Start the app as a user would, wait for its health check, and stop it afterwards."""
    port = _free_port()
    log = open(ROOT / "tests" / ".streamlit-test.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", os.environ.get("LORA_TEST_ENTRY", "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "LORA_DEVICE": "cpu"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"streamlit did not start; see {log.name}")
        time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # playwright cannot download its own browser here: use the system's Chromium
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"browser tests need Chromium at {CHROMIUM}: apt-get install chromium")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1600, "height": 1400}}


@pytest.fixture
def app_test(monkeypatch):
    """An AppTest of app.py on the CPU (see helpers.keep_navigation_mode for an AppTest quirk)."""
    from streamlit.testing.v1 import AppTest

    from helpers import keep_navigation_mode

    keep_navigation_mode(monkeypatch)
    monkeypatch.setenv("LORA_DEVICE", "cpu")
    return AppTest.from_file(str(ROOT / os.environ.get("LORA_TEST_ENTRY", "app.py")), default_timeout=60)
