"""Interaction latency in headless Chromium, every page against a minimal app: python bench/bench_browser.py

For each target (the minimal app of bench/minimal_app.py, the six pages at the seed's size, and
Explore at d = k = 1024, n = 64) a slider is moved one step with the keyboard, back and forth, and
each interaction is timed inside the page, on its own clock (performance.now()):

- start: the keydown event (a capturing listener on window sees it before the slider does);
- ready: the first moment, checked after every DOM mutation, at which the app is idle again
  (``data-test-script-state`` is ``notRunning``, no element is stale) and a fingerprint of every
  figure and heading equals the one recorded for the new value during the warm-up. The fingerprint
  is every text drawn in every plotly chart's SVG (titles, cell numbers, tick labels, legends)
  plus the h1-h3 headings, metric values and typeset equations, so "ready" means every figure shows the new state;
- shown: the next animation frame after ready, i.e. the frame that paints it. This is the latency.

Where the time goes, per interaction, without touching the app:

- widget: key → the rerun request leaves the page (the page's WebSocket.send is wrapped);
- first/last message: the request → the first ForwardMsg, and → ``script_finished``, as Chromium's
  network layer saw them (CDP Network events, decoded). Chromium reads a WebSocket only as fast as
  the page drains it, so a page busy drawing earlier deltas delays "last message": it is an upper
  bound on the server's part, not the server's part;
- main CPU: the page's main-thread busy time (CDP Performance: TaskDuration, of which ScriptDuration
  is JavaScript and LayoutDuration + RecalcStyleDuration layout).

``--server-timing`` also starts both servers through a small wrapper that logs, per script run, the
run itself, Streamlit's post-run ``gc.collect(2)`` (``runner.postScriptGC``, on by default), and the
moment ``script_finished`` is handed to the WebSocket, on time.monotonic(), the clock of Chromium's
network timestamps on Linux. That splits the latency exactly into the server's part and what the
browser needed after it. It patches private Streamlit 1.67 functions, so it is opt-in.

Targets are measured round-robin, a few interactions each per round, so the load of the shared
machine falls on all of them alike. Each target has its own browser context, brought to the front
while it is measured. The servers are started here (``LORA_DEVICE=cpu``) and stopped at the end.

Options: ``--rounds`` and ``--block`` (interactions per target = rounds × block, default 10 × 2 = 20),
``--only NAME ...`` (the baseline always runs), ``--json PATH`` to save every sample, ``--server-timing``.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers import start_streamlit

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run",
                 # one context per target, only one in front: keep the others' timers and frames unthrottled
                 "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                 "--disable-backgrounding-occluded-windows"]
VIEWPORT = {"width": 1600, "height": 1400}  # as the browser tests
QUIET_MS = 300          # after "shown", wait until the DOM has been still this long before the next press
TIMEOUT_MS = 60_000
MAIN_THREAD = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")

# Runs in every page before Streamlit's own code: the clock, the WebSocket tap, the readiness check.
PROBE = r"""
(() => {
  const B = window.__bench = {armed: false, expect: null, key: null, ready: null, shown: null,
                              lastMut: 0, mutations: 0, sent: [], checks: 0};
  const Native = window.WebSocket;
  class Tapped extends Native {
    send(d) {  // the rerun request leaves the page: the widget's part ends here
      B.sent.push(performance.now());
      return super.send(d);
    }
  }
  window.WebSocket = Tapped;

  B.fingerprint = () => {
    const parts = [];
    for (const chart of document.querySelectorAll("[data-testid='stPlotlyChart']")) {
      for (const t of chart.querySelectorAll('svg.main-svg text')) {
        if (!t.closest('.hoverlayer')) parts.push(t.textContent);
      }
      parts.push('|');
    }
    for (const e of document.querySelectorAll("h1, h2, h3, [data-testid='stMetricValue'], .katex-html")) parts.push(e.textContent);
    return parts.join('\u241f');
  };
  B.idle = () => {
    const app = document.querySelector("[data-testid='stApp']");
    return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
      && !document.querySelector("[data-stale='true']");
  };
  const check = () => {
    if (!B.armed || B.ready !== null || B.key === null || !B.idle()) return;
    B.checks++;
    if (B.fingerprint() !== B.expect) return;
    B.ready = performance.now();
    requestAnimationFrame(() => { B.shown = performance.now(); });
  };
  B.redrawn = new Set();  // the charts whose DOM changed in this interaction
  new MutationObserver(records => {
    B.lastMut = performance.now(); B.mutations++;
    if (B.armed) {
      for (const r of records) {
        const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
        const chart = el && el.closest("[data-testid='stPlotlyChart']");
        if (chart) B.redrawn.add(chart);
      }
    }
    check();
  })
    .observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
  window.addEventListener('keydown', () => { if (B.armed && B.key === null) { B.key = performance.now(); check(); } }, true);
  B.arm = expect => {
    Object.assign(B, {armed: true, expect, key: null, ready: null, shown: null, mutations: 0, sent: [], checks: 0});
    B.redrawn = new Set();
  };
  B.collect = () => {
    B.armed = false;
    return {key: B.key, ready: B.ready, shown: B.shown, lastMut: B.lastMut, mutations: B.mutations,
            checks: B.checks, sent: B.sent, redrawn: [...B.redrawn].filter(c => c.isConnected).length,
            charts: document.querySelectorAll("[data-testid='stPlotlyChart']").length};
  };
})();
"""

# --server-timing: `python -c SERVER_TIMING run app.py ...` is `streamlit run app.py ...` plus a log.
SERVER_TIMING = r"""
import gc, json, os, sys, time, types
from streamlit.runtime.scriptrunner import script_runner as sr
log = open(os.environ["BENCH_SERVER_LOG"], "a", buffering=1)
spent = {"gc": 0.0, "gc_start": None}
def collect(*args):
    spent["gc_start"] = time.monotonic()
    t0 = time.perf_counter()
    try:
        return gc.collect(*args)
    finally:
        spent["gc"] += time.perf_counter() - t0
sr.gc = types.SimpleNamespace(collect=collect)
original = sr.ScriptRunner._run_script
def run(self, rerun_data):
    g0, t0, c0, m0 = spent["gc"], time.perf_counter(), time.thread_time(), time.monotonic()
    try:
        return original(self, rerun_data)
    finally:
        gc_ms = (spent["gc"] - g0) * 1e3
        log.write(json.dumps({"start": m0, "run_ms": (time.perf_counter() - t0) * 1e3 - gc_ms, "gc_ms": gc_ms,
                              "cpu_ms": (time.thread_time() - c0) * 1e3}) + "\n")
sr.ScriptRunner._run_script = run
from streamlit.web.server.starlette import starlette_websocket as ws
serialize = ws.serialize_forward_msg
def logged_serialize(msg):
    if msg.WhichOneof("type") == "script_finished":
        log.write(json.dumps({"finished_written": time.monotonic()}) + "\n")
    return serialize(msg)
ws.serialize_forward_msg = logged_serialize
from streamlit.web.cli import main
sys.argv = ["streamlit"] + sys.argv[1:]
sys.exit(main())
"""


@dataclass
class Target:
    name: str
    interaction: str
    path: str
    slider: str                 # the slider's label text
    server: str = "app"         # "app" (app.py) or "minimal" (bench/minimal_app.py)
    baseline: bool = False      # the row the ratios divide by
    values: list = field(default_factory=list)   # the slider's value after each key: [after Right, after Left]
    fingerprints: dict = field(default_factory=dict)
    samples: list = field(default_factory=list)
    frames: list = field(default_factory=list)
    page: object = None
    cdp: object = None


TARGETS = [
    Target("minimal app", "v 2 ↔ 3", "/", "v", server="minimal", baseline=True),
    Target("minimal app, 12 heatmaps", "v 2 ↔ 3", "/?charts=12", "v", server="minimal"),  # a diagnostic
    Target("explore", "r 2 ↔ 3 (sidebar)", "/", "r: LoRA rank"),  # the default page lives at /, not /explore
    Target("explore: update", "r 2 ↔ 3 (sidebar)", "/?view=update", "r: LoRA rank"),
    Target("explore: Q", "r 2 ↔ 3 (sidebar)", "/?view=q", "r: LoRA rank"),
    Target("explore: one cell", "r 2 ↔ 3 (sidebar)", "/?view=cell", "r: LoRA rank"),
    Target("training", "Step t 1 ↔ 2", "/training", "Step t"),
    Target("attention", "r 2 ↔ 3 (sidebar)", "/attention", "r: LoRA rank"),
    Target("attention: output", "r 2 ↔ 3 (sidebar)", "/attention?view=output", "r: LoRA rank"),
    Target("attention: weights change", "r 2 ↔ 3 (sidebar)", "/attention?view=change", "r: LoRA rank"),
    Target("attention: output change", "r 2 ↔ 3 (sidebar)", "/attention?view=out_change", "r: LoRA rank"),
    Target("rank", "r 2 ↔ 3 (sidebar)", "/rank", "r: LoRA rank"),
    Target("rank: best copy", "r 2 ↔ 3 (sidebar)", "/rank?view=copy", "r: LoRA rank"),
    Target("rank: error", "r 2 ↔ 3 (sidebar)", "/rank?view=error", "r: LoRA rank"),
    Target("scale", "scale_r 4 ↔ 8", "/scale", "Rank r (this page's own)"),
    Target("present", "r 2 ↔ 3 (slide 4)", "/present?slide=4", "r: LoRA rank"),
    Target("explore d=k=1024, n=64", "r 2 ↔ 3 (sidebar)", "/?d=1024&k=1024&n=64", "r: LoRA rank"),
    Target("training d=k=1024, n=64", "Step t 1 ↔ 2", "/training?d=1024&k=1024&n=64&steps=90", "Step t"),
]


# --- servers -----------------------------------------------------------------------------------

def start_server(script: str, log_dir: Path, timing_log: Path | None = None) -> tuple[subprocess.Popen, str]:
    return start_streamlit(script, log_dir / f"{Path(script).stem}.log",
                           launcher=["-c", SERVER_TIMING] if timing_log else None,
                           env={"BENCH_SERVER_LOG": str(timing_log)} if timing_log else None)


# --- in the page -------------------------------------------------------------------------------

def slider(page, label: str):
    return page.locator("[data-testid='stSlider']").filter(has_text=label).locator("input[type='range']").first


def settle(page) -> None:
    """Idle, no stale element, and no DOM change for a while."""
    page.wait_for_function("() => window.__bench.idle()", timeout=TIMEOUT_MS, polling=50)
    page.wait_for_function("q => performance.now() - window.__bench.lastMut > q", arg=2 * QUIET_MS,
                           timeout=TIMEOUT_MS, polling=50)
    page.wait_for_function("() => window.__bench.idle()", timeout=TIMEOUT_MS, polling=50)


def warm(t: Target, browser, base: str) -> None:
    """Open the page, load its figures, and record the fingerprint of both slider values."""
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.add_init_script(PROBE)
    page = t.page = ctx.new_page()
    page.goto(base + t.path)
    page.wait_for_selector("[data-testid='stPlotlyChart'] .main-svg", timeout=TIMEOUT_MS)
    settle(page)
    s = slider(page, t.slider)
    start = s.get_attribute("aria-valuetext") or s.input_value()
    t.fingerprints[start] = page.evaluate("() => window.__bench.fingerprint()")
    for key in ("ArrowRight", "ArrowLeft"):
        before = page.evaluate("() => window.__bench.fingerprint()")
        s.focus()
        page.keyboard.press(key)
        page.wait_for_function("old => window.__bench.fingerprint() !== old", arg=before, timeout=TIMEOUT_MS, polling=50)
        settle(page)
        value = s.get_attribute("aria-valuetext") or s.input_value()
        t.values.append(value)
        t.fingerprints[value] = page.evaluate("() => window.__bench.fingerprint()")
    if t.values[1] != start or len(set(t.fingerprints.values())) != 2:
        raise RuntimeError(f"{t.name}: the slider did not go {start} → {t.values[0]} → {start} with two distinct views")
    if page.locator("[data-testid='stException']").count():
        raise RuntimeError(f"{t.name}: the page shows an exception")
    # Chromium's own record of the WebSocket frames and of the page's main-thread time
    t.cdp = page.context.new_cdp_session(page)
    t.cdp.send("Performance.enable")
    t.cdp.send("Network.enable")
    t.cdp.on("Network.webSocketFrameSent", lambda e: t.frames.append(("out", e["timestamp"], None)))
    t.cdp.on("Network.webSocketFrameReceived",
             lambda e: t.frames.append(("in", e["timestamp"], e["response"]["payloadData"])))


def metrics(cdp) -> dict:
    """Chromium's cumulative main-thread times of the page (seconds)."""
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def interact(t: Target, i: int) -> dict:
    page = t.page
    key, value = ("ArrowRight", t.values[0]) if i % 2 == 0 else ("ArrowLeft", t.values[1])
    slider(page, t.slider).focus()
    before = metrics(t.cdp)
    t.frames.clear()
    page.evaluate("fp => window.__bench.arm(fp)", t.fingerprints[value])
    page.keyboard.press(key)
    ok = True
    try:
        page.wait_for_function("() => window.__bench.shown !== null", timeout=TIMEOUT_MS, polling=20)
    except Exception:  # noqa: BLE001 - a miss is reported, not fatal
        ok = False
    try:
        page.wait_for_function("q => performance.now() - window.__bench.lastMut > q", arg=QUIET_MS,
                               timeout=10_000, polling=50)
    except Exception:  # noqa: BLE001 - a page that never goes quiet is measured as it is
        pass
    raw = page.evaluate("() => window.__bench.collect()")
    after = metrics(t.cdp)  # also a barrier: this session's frame events have been delivered by now
    return summarise(raw, ok, list(t.frames), {k: (after[k] - before[k]) * 1e3 for k in MAIN_THREAD})


def summarise(raw: dict, ok: bool, frames: list, cpu: dict) -> dict:
    """One interaction, in ms from the keydown (page clock) or from the request (network clock)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    k = raw["key"]
    out = {"ok": ok and raw["shown"] is not None and k is not None, "shown": None, "ready": None, "widget": None,
           "first_msg": None, "last_msg": None, "request_mono": None, "msgs": 0, "bytes": 0, "timeline": [],
           "cached": 0,
           "last_dom": raw["lastMut"] - k if k else None, "mutations": raw["mutations"], "checks": raw["checks"],
           "redrawn": raw["redrawn"], "charts": raw["charts"],
           **{f"cpu_{name}": v for name, v in cpu.items()}}
    if not out["ok"]:
        return out
    out["shown"], out["ready"] = raw["shown"] - k, raw["ready"] - k
    sent = [x - k for x in raw["sent"] if x >= k]
    out["widget"] = sent[0] if sent else None
    t_out = out["request_mono"] = next((ts for d, ts, _ in frames if d == "out"), None)
    for direction, ts, payload in frames:
        if direction != "in" or t_out is None or ts < t_out:
            continue
        data = base64.b64decode(payload)
        rel = (ts - t_out) * 1e3
        out["msgs"] += 1
        out["bytes"] += len(data)
        if out["first_msg"] is None:
            out["first_msg"] = rel
        msg = ForwardMsg()
        try:
            msg.ParseFromString(data)
        except Exception:  # noqa: BLE001 - a frame that is no ForwardMsg we know
            continue
        kind = msg.WhichOneof("type")
        out["cached"] += kind == "ref_hash"
        out["timeline"].append([round(rel, 1), kind, len(data)])
        if kind == "script_finished" and out["last_msg"] is None:
            out["last_msg"] = rel
    return out


# --- the report ------------------------------------------------------------------------------

def pct(values, q):
    """The q-th percentile, linear between the order statistics (numpy's default)."""
    v = sorted(x for x in values if x is not None)
    if not v:
        return float("nan")
    pos = (len(v) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def machine_info(browser) -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import plotly
    import streamlit
    return [f"machine: {platform.machine()}, nproc {os.cpu_count()}, {model}",
            f"browser: Chromium {browser.version} (headless, {CHROMIUM}); viewport {VIEWPORT['width']}×{VIEWPORT['height']}",
            f"python {platform.python_version()}, streamlit {streamlit.__version__}, plotly {plotly.__version__}, "
            f"LORA_DEVICE=cpu"]


def table(cols, rows) -> None:
    print("| " + " | ".join(f"{c:{a}{w}}" for c, w, a in cols) + " |")
    print("|" + "|".join("-" * (w + 1) + (":" if a == ">" else "-") for _, w, a in cols) + "|")
    for row in rows:
        print("| " + " | ".join(f"{v:{a}{w}}" for v, (_, w, a) in zip(row, cols)) + " |")


def report(targets: list[Target], info: list[str], loads: list[float]) -> None:
    base = next(t for t in targets if t.baseline)
    base_p95 = pct([s["shown"] for s in base.samples if s["ok"]], 95)
    twelve = next((t for t in targets if t.name == "minimal app, 12 heatmaps"), None)
    twelve_p95 = pct([s["shown"] for s in twelve.samples if s["ok"]], 95) if twelve else float("nan")
    print()
    for line in info:
        print(line)
    print(f"load average (1 min) at start, after warming, at end: {', '.join(f'{x:.1f}' for x in loads)}")
    print()
    print("Latency: keydown → the first frame in which every figure shows the new value; ms, p50 and p95.")
    print("Target: p95 ≤ 1.5 × the minimal app's p95 at the seed's size (p95/min); /min12 divides by the p95")
    print("of the minimal app drawing 12 heatmaps. Then p50s: figs = charts redrawn / charts on the page;")
    print("widget = key → request sent; 1st msg / last msg = request → first ForwardMsg / script_finished at")
    print("Chromium's network layer (held back while the page is busy, so last msg is not the server's time:")
    print("see --server-timing); main CPU = the page's main-thread busy time (TaskDuration), of which JS =")
    print("JavaScript and layout = layout + style; msgs = ForwardMsgs received, of which cached = references")
    print("to a large message the page already holds; KB = bytes received.")
    print()
    cols = [("page", 28, "<"), ("interaction", 20, "<"), ("n", 3, ">"), ("p50", 5, ">"), ("p95", 5, ">"),
            ("p95/min", 7, ">"), ("/min12", 6, ">"), ("figs", 5, ">"), ("widget", 6, ">"), ("1st msg", 7, ">"),
            ("last msg", 8, ">"), ("main CPU", 8, ">"), ("JS", 5, ">"), ("layout", 6, ">"), ("msgs", 4, ">"),
            ("cached", 6, ">"), ("KB", 5, ">")]
    rows = []
    for t in targets:
        good = [s for s in t.samples if s["ok"]]

        def p50(key):
            return pct([s.get(key) for s in good], 50)

        shown = [s["shown"] for s in good]
        p95 = pct(shown, 95)
        misses = len(t.samples) - len(good)
        layout = pct([s["cpu_LayoutDuration"] + s["cpu_RecalcStyleDuration"] for s in good], 50)
        rows.append([t.name + (f" ({misses} missed)" if misses else ""), t.interaction, len(good),
                     f"{pct(shown, 50):.0f}", f"{p95:.0f}", f"{p95 / base_p95:.2f}", f"{p95 / twelve_p95:.2f}",
                     f"{p50('redrawn'):.0f}/{p50('charts'):.0f}", f"{p50('widget'):.0f}",
                     f"{p50('first_msg'):.0f}", f"{p50('last_msg'):.0f}", f"{p50('cpu_TaskDuration'):.0f}",
                     f"{p50('cpu_ScriptDuration'):.0f}", f"{layout:.0f}", f"{p50('msgs'):.0f}",
                     f"{p50('cached'):.0f}", f"{p50('bytes') / 1024:.1f}"])
    table(cols, rows)


def server_report(targets: list[Target], timing: dict[str, Path]) -> None:
    """Each interaction's script run: the first run in the server's log to start after the request."""
    lines = {name: [json.loads(line) for line in path.read_text().splitlines()] for name, path in timing.items()}
    runs = {name: sorted((r for r in rows if "start" in r), key=lambda r: r["start"]) for name, rows in lines.items()}
    written = {name: sorted(r["finished_written"] for r in rows if "finished_written" in r)
               for name, rows in lines.items()}
    print()
    print("Inside the servers (--server-timing), p50 ms: run = the script run; gc = Streamlit's gc.collect(2)")
    print("after it, which holds the GIL, so script_finished waits for it; cpu = the script thread's CPU time,")
    print("gc included; done = request → script_finished handed to the WebSocket; browser = shown − widget − done,")
    print("what the page still needed once the server was done.")
    print()
    cols = [("page", 28, "<"), ("run", 5, ">"), ("gc", 5, ">"), ("cpu", 5, ">"), ("done", 5, ">"),
            ("browser", 7, ">"), ("p50", 5, ">")]
    rows = []
    for t in targets:
        mine = []
        for s in t.samples:
            if not s["ok"] or s["request_mono"] is None:
                continue
            t0 = s["request_mono"]
            run = next((r for r in runs[t.server] if r["start"] >= t0 - 0.002), None)
            done = next((w for w in written[t.server] if w >= t0), None)
            if run is None or done is None:
                continue
            s["server_run"] = run
            s["done"] = (done - t0) * 1e3
            s["browser"] = s["shown"] - (s["widget"] or 0) - s["done"]
            mine.append(s)
        if mine:
            rows.append([t.name, f"{pct([s['server_run']['run_ms'] for s in mine], 50):.0f}",
                         f"{pct([s['server_run']['gc_ms'] for s in mine], 50):.0f}",
                         f"{pct([s['server_run']['cpu_ms'] for s in mine], 50):.0f}",
                         f"{pct([s['done'] for s in mine], 50):.0f}", f"{pct([s['browser'] for s in mine], 50):.0f}",
                         f"{pct([s['shown'] for s in mine], 50):.0f}"])
    table(cols, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block", type=int, default=2, help="interactions per target per round (even)")
    parser.add_argument("--only", nargs="*", help="target names to run (the baseline always runs)")
    parser.add_argument("--json", type=Path, help="save every sample here")
    parser.add_argument("--server-timing", action="store_true",
                        help="also time each script run and Streamlit's post-run gc.collect inside the servers")
    args = parser.parse_args()
    targets = [t for t in TARGETS if t.baseline or not args.only or t.name in args.only]

    from playwright.sync_api import sync_playwright

    log_dir = Path(tempfile.mkdtemp(prefix="bench_browser_"))
    servers = []
    t_start = time.perf_counter()
    loads = [os.getloadavg()[0]]
    try:
        timing = {name: log_dir / f"{name}.runs.jsonl" for name in ("app", "minimal")} if args.server_timing else {}
        app_proc, app_url = start_server("app.py", log_dir, timing.get("app"))
        servers.append(app_proc)
        min_proc, min_url = start_server("bench/minimal_app.py", log_dir, timing.get("minimal"))
        servers.append(min_proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            info = machine_info(browser)
            # one session runs app.py first, so the server leaves Streamlit's pages-directory mode
            first = browser.new_page()
            first.goto(app_url + "/")
            first.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=TIMEOUT_MS)
            first.close()
            for t in targets:
                t0 = time.perf_counter()
                warm(t, browser, min_url if t.server == "minimal" else app_url)
                print(f"warmed {t.name:<28} values {t.values[1]} ↔ {t.values[0]}  ({time.perf_counter() - t0:.1f} s)",
                      flush=True)
            loads.append(os.getloadavg()[0])
            for rnd in range(args.rounds):
                for t in targets:
                    t.page.bring_to_front()
                    for i in range(args.block):
                        t.samples.append(interact(t, i))
                done = [f"{pct([s['shown'] for s in t.samples if s['ok']], 50):.0f}" for t in targets]
                print(f"round {rnd + 1}/{args.rounds}: running p50 ms " + " ".join(done), flush=True)
            loads.append(os.getloadavg()[0])
            report(targets, info, loads)
            if args.server_timing:
                server_report(targets, timing)
            browser.close()
    finally:
        for proc in servers:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s; server logs in {log_dir}")
    if args.json:
        args.json.write_text(json.dumps({t.name: t.samples for t in targets}, indent=1))


if __name__ == "__main__":
    main()
