"""Small helpers the tests share: decoding plotly specs from AppTest, and waiting on the real app."""
from __future__ import annotations

import base64
import json
import re

import numpy as np

def server_log_path():
    """The test server's log: one per pytest process (xdist workers and concurrent runs each have their own)."""
    import os
    from pathlib import Path

    return Path(__file__).resolve().parent / f".streamlit-test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}.log"


IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def decode(value):
    """Plotly's JSON stores numpy arrays as {dtype, bdata, shape}; turn them back into arrays."""
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        if shape:
            shape = [int(s) for s in str(shape).split(",")] if isinstance(shape, str) else shape
            arr = arr.reshape(shape)
        return arr
    return np.asarray(value)


def as_read(markdown: str) -> str:
    """A message as a reader sees it: backslash escapes resolved, invisible word joiners gone (see lora_app.echo)."""
    import re
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def figure_name(spec: dict) -> str:
    """A figure's title as "A_Q (5×2)", also when a narrow figure moved its shape down to the subtitle."""
    title = spec["layout"]["title"]
    name = title["text"].split("<br>")[0]
    shape = re.match(r"\(\d+×\d+\)", (title.get("subtitle") or {}).get("text") or "")
    return f"{name} {shape.group(0)}" if shape else name


def figures(at) -> dict[str, dict]:
    """AppTest's plotly charts as {title (first line, with its shape): figure dict}, first occurrence kept."""
    out = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        out.setdefault(figure_name(spec), spec)
    return out


def cell_texts(spec: dict) -> list[str]:
    """The numbers printed in a heatmap's cells (the scatter trace that carries them), row by row."""
    for trace in spec["data"][1:]:
        if "text" in trace.get("mode", ""):
            return list(trace["text"])
    return []


def open_view(at, page: str, slug: str):
    """Open one part (tab) of a page in AppTest, as a click on its tab would, and rerun."""
    at.session_state[f"view_{page}"] = _sections(page)[slug]
    return at.run()


def open_expander(at, key: str):
    """Open a lazy expander (one that runs its content only when open) in AppTest, and rerun."""
    at.session_state[key] = True
    return at.run()


def all_figures(at, page: str) -> dict[str, dict]:
    """The figures of every part of a page, opened one after the other (first occurrence kept).

    The part that was open is opened again at the end, so a test goes on where it was.
    """
    labels = _sections(page)
    key = f"view_{page}"
    was = next((slug for slug, label in labels.items() if key in at.session_state and label == at.session_state[key]), None)
    out = {}
    for slug in labels:
        for title, spec in figures(open_view(at, page, slug)).items():
            out.setdefault(title, spec)
    if was is not None:
        open_view(at, page, was)
    return out


def _sections(page: str) -> dict[str, str]:
    from lora_app import text
    return {"explore": text.EXPLORE_SECTIONS, "training": text.training.SECTIONS,
            "attention": text.attention.SECTIONS, "rank": text.rank.SECTIONS}[page]


def heatmap_z(spec: dict) -> np.ndarray:
    return decode(spec["data"][0]["z"]).astype(float)


def wait_idle(page, timeout=30_000):
    """The app is idle, after the rerun that follows the browser's first report of its size (lora_app.widgets.screen)."""
    try:
        if not page.evaluate("() => !!document.documentElement.dataset.loraSettled"):
            page.wait_for_function("() => !!document.documentElement.dataset.loraScreen", timeout=10_000)
            page.wait_for_timeout(250)  # the rerun the report asks for has started
            page.evaluate("() => { document.documentElement.dataset.loraSettled = '1'; }")
    except Exception:  # a page without the app (a bare benchmark page) has no reporter
        pass
    page.wait_for_selector(IDLE, timeout=timeout)


def chart_texts(page, title_start: str) -> list[str]:
    """The numbers written in the cells of the first chart whose title starts with ``title_start``."""
    charts = page.locator("[data-testid='stPlotlyChart']").filter(
        has=page.locator(".gtitle", has_text=title_start))
    return charts.first.locator("g.textpoint text").all_text_contents()


def wait_chart_change(page, title_start: str, old: list[str], timeout=15_000) -> None:
    """Wait until the chart whose title starts with ``title_start`` shows cell numbers other than ``old``."""
    page.wait_for_function(
        "([start, old]) => { const t = [...document.querySelectorAll('.gtitle')].find(e => e.textContent.startsWith(start));"
        " const c = t && t.closest(\"[data-testid='stPlotlyChart']\");"
        " return c && [...c.querySelectorAll('.textpoint text')].map(e => e.textContent).join() !== old; }",
        arg=[title_start, ",".join(old)], timeout=timeout)


def keep_navigation_mode(monkeypatch=None) -> None:
    """Stop AppTest 1.67 from falling back to the old pages-directory mode on reruns.

    AppTest resets ``PagesManager.uses_pages_directory`` before every run and then sees our
    ``pages/`` folder, so reruns after the first execute the page file alone and the entry point's
    sidebar vanishes. ``st.navigation`` switches that mode off in a real server; we do the same.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    if monkeypatch is None:
        PagesManager.__init__ = init
    else:
        monkeypatch.setattr(PagesManager, "__init__", init)


def start_streamlit(script: str, log_path, *, launcher: list[str] | None = None, env: dict | None = None,
                    timeout_s: float = 90):
    """Start ``streamlit run script`` as a user would, on a free port, and wait for its health check.

    Shared by the browser tests' server fixture and the benchmarks. Returns (process, base URL).
    ``launcher`` replaces ``-m streamlit`` (the browser benchmark wraps the server to time it).
    """
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, *(launcher or ["-m", "streamlit"]), "run", script, "--server.headless", "true",
         "--server.port", str(port), "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=Path(__file__).resolve().parents[1], stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "LORA_DEVICE": "cpu", **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout_s
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"streamlit did not start for {script}; see {log_path}")
        time.sleep(0.3)


def run_async(coro):
    """``asyncio.run(coro)`` on a thread of its own: pytest-playwright's sync API keeps an event loop
    running on the main thread once a browser test has run, and asyncio.run refuses to start there."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
