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
    return {"explore": text.EXPLORE_SECTIONS, "training": text.training.SECTIONS, "family": text.family.SECTIONS,
            "attention": text.attention.SECTIONS, "rank": text.rank.SECTIONS}[page]


def heatmap_z(spec: dict) -> np.ndarray:
    return decode(spec["data"][0]["z"]).astype(float)


# The screen reporter (lora_app/widgets/screen.py) keeps its state in ``window.__lora``: ``keys`` counts the
# stepper's and the slides' key presses (``n`` counted, ``sent`` sent, ``id`` this page's own) and ``ack`` is
# what the server mounted it with last, ``[id, presses applied]``. The server can only send this page's id
# back from a run that had the page's first report (its size and its key count), and it mounts the reporter
# at the end of the page: so once ``ack`` carries the id, that run has drawn the whole page.
ACKED = """() => { const l = window.__lora, k = l && l.keys;
  return !!k && Array.isArray(l.ack) && l.ack[0] === k.id; }"""
# every key press counted has been sent, and a run that applied them all has drawn the page and is over
KEYS_APPLIED = """(idle) => { const l = window.__lora, k = l && l.keys;
  return !!k && k.n === k.sent && Array.isArray(l.ack) && l.ack[0] === k.id && l.ack[1] >= k.sent
    && document.documentElement.dataset.loraKeysPending !== '1' && !!document.querySelector(idle); }"""
# what the browser draws after the script is idle: plotly's charts (a lazily loaded component), the web
# fonts, and the equations screen.py fits to their boxes on the animation frame after a change
DRAWN = """() => document.fonts.status === 'loaded'
  && [...document.querySelectorAll("[data-testid='stPlotlyChart']")].every(c => c.querySelector('.main-svg'))"""
TWO_FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"


def wait_idle(page, timeout=30_000):
    """The app is idle, after the run that took the browser's first report of its size (lora_app.widgets.screen).

    A page without the app (a bare benchmark page) has no reporter: then only idle is waited for.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    if not page.evaluate("() => !!document.documentElement.dataset.loraSettled"):
        try:
            page.wait_for_function("() => !!document.documentElement.dataset.loraScreen", timeout=10_000)
            reporter = True
        except PlaywrightTimeout:  # no reporter on this page
            reporter = False
        if reporter:
            page.wait_for_function(ACKED, timeout=timeout)  # the run with this page's size has drawn it
            page.evaluate("() => { document.documentElement.dataset.loraSettled = '1'; }")
    page.wait_for_selector(IDLE, timeout=timeout)


def wait_keys(page, timeout=30_000):
    """Every key press the page counted has been applied by a run of the server, and that run is over."""
    page.wait_for_function(KEYS_APPLIED, arg=IDLE, timeout=timeout)


def wait_drawn(page, timeout=30_000):
    """Idle, every chart drawn, the fonts loaded, and the equations fitted (two animation frames later)."""
    page.wait_for_selector(IDLE, timeout=timeout)
    page.wait_for_function(DRAWN, timeout=timeout)
    page.evaluate(TWO_FRAMES)
    page.wait_for_selector(IDLE, timeout=timeout)


def track_runs(page) -> None:
    """Count, from the page's websocket, the reruns it asks for and the runs the server starts and finishes.

    conftest.py calls it for every page the browser opens, before its first navigation. ``wait_server``
    then knows whether the server has run with everything the page sent: a resize, a click, a slider.
    """
    if getattr(page, "lora_runs", None) is not None:
        return
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    runs = page.lora_runs = {"seq": 0, "asked": 0, "requests": 0, "started": 0, "finished": 0, "ws": None}

    def sent(payload):
        if isinstance(payload, (bytes, bytearray)) and BackMsg.FromString(payload).WhichOneof("type") == "rerun_script":
            runs["seq"] += 1
            runs["asked"], runs["requests"] = runs["seq"], runs["requests"] + 1

    def received(payload):
        if not isinstance(payload, (bytes, bytearray)):
            return
        msg = ForwardMsg.FromString(payload)
        kind = msg.WhichOneof("type")
        if kind == "script_finished" and msg.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
            return  # stopped for a rerun: the run that follows is the one that counts
        if kind in ("new_session", "script_finished"):
            runs["seq"] += 1
            runs["started" if kind == "new_session" else "finished"] = runs["seq"]

    def opened(ws):
        runs["ws"] = ws
        ws.on("framesent", sent)
        ws.on("framereceived", received)

    page.on("websocket", opened)


def reruns_asked(page) -> int:
    """How many reruns the page has asked the server for (a mark for ``wait_server``)."""
    runs = getattr(page, "lora_runs", None)
    return runs["requests"] if runs else 0


def wait_server(page, asked_after: int | None = None, timeout=30_000) -> None:
    """Idle, and the server has run with everything the page sent: a run started after its last request is over.

    With ``asked_after`` (from ``reruns_asked``), first wait for the page to ask for a rerun after that mark
    (a slider moved, a value picked), so a request still on its way is not missed.
    """
    import time

    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    runs = getattr(page, "lora_runs", None)
    if runs is None:
        raise RuntimeError("this page does not count its runs: open it through the browser fixture (conftest.py)")
    deadline = time.monotonic() + timeout / 1e3

    def caught_up():
        return (asked_after is None or runs["requests"] > asked_after) and \
            runs["started"] > runs["asked"] and runs["finished"] > runs["started"]

    while not caught_up():
        left = deadline - time.monotonic()
        if left <= 0 or runs["ws"] is None:
            raise AssertionError(f"the server never caught up with the page: {runs}")
        # the next frame the page sends (its request is still to go) or receives: each updates the counts
        event = "framesent" if asked_after is not None and runs["requests"] <= asked_after else "framereceived"
        try:
            runs["ws"].wait_for_event(event, timeout=left * 1e3)
        except PlaywrightTimeout:
            pass  # the deadline, above, says what never came
    page.wait_for_selector(IDLE, timeout=timeout)


def settle(page, timeout=30_000):
    """The page as a person sees it once it has stopped moving: the server has run with this window's size
    and with every key press, and the browser has drawn what it sent."""
    size = page.viewport_size
    page.wait_for_function("s => document.documentElement.dataset.loraScreen === s",
                           arg=f"{size['width']}x{size['height']}", timeout=timeout)
    wait_idle(page, timeout)
    wait_server(page, timeout=timeout)
    wait_keys(page, timeout)
    wait_drawn(page, timeout)


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


def walk(page, app_url: str, stops: list[str]):
    """Go to each of ``stops`` (``"training?view=loss"``, ``"present?slide=3"``) as a person would; yields each.

    The first stop is opened by its link; then a page is reached by its link in the navigation bar (by
    its link typed in, where a narrow screen has folded the links away into the closed sidebar),
    a part by its tab, the next slide by the Next button. Every move is a rerun of the one session
    that the first link opened, not a new page: about 0.7 s of a renderer's CPU instead of 2.4 s for
    a page load (measured; README, "Test it"). Each stop is yielded once the page has settled there,
    scrolled to its top as a page opened by its link is, and the URL is checked to be the stop's.
    """
    from lora_app import text

    labels = {"": text.EXPLORE_SECTIONS, "training": text.training.SECTIONS, "family": text.family.SECTIONS,
              "attention": text.attention.SECTIONS, "real": text.real.SECTIONS, "adapters": text.adapters.SECTIONS,
              "rank": text.rank.SECTIONS}
    titles = {"": "Explore", "training": "Training", "family": "Family", "attention": "Attention", "real": "Real model",
              "adapters": "Adapters", "rank": "Rank", "scale": "Scale", "present": "Present"}
    here = None
    for number, stop in enumerate(stops):
        path, _, query = stop.partition("?")
        key, _, value = query.partition("=")
        there = re.compile(rf"[?&]{key}={re.escape(value)}(&|$)")  # the URL of this stop's part or slide
        link = page.get_by_role("link", name=titles[path], exact=True).first
        box = link.bounding_box() if number and path != here and link.is_visible() else None
        in_view = box is not None and box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]
        if number == 0 or (path != here and not in_view):  # a phone's folds its links away into the closed sidebar
            page.goto(f"{app_url}/{stop}")
        elif path != here:
            link.click()
            page.wait_for_url(re.compile(rf"/{path}(\?|$)") if path else re.compile(r"/(home)?(\?|$)"))
            settle(page)
        if query and not there.search(page.url):
            if key == "view":
                page.get_by_role("tab", name=labels[path][value], exact=True).click()
            else:
                page.locator(".st-key-present_next button").click()  # the slides come in order
            page.wait_for_url(there)
        settle(page)
        # a tab's click scrolled it into view (in the main block, Streamlit's scroller): back to the top, as on a load
        page.evaluate("() => { window.scrollTo(0, 0); document.querySelectorAll('*').forEach(e => { e.scrollTop = 0; }); }")
        here = path
        assert not query or there.search(page.url), (stop, page.url)
        yield stop
