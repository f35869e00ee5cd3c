"""Classroom load (issue 6): 20 concurrent sessions, as tabs of one headless Chromium against one server.

Every session opens its own view from the URL, then moves a control of its own (slider keys,
keyboard shortcuts, checkboxes, pills) and back, all tabs interleaved. Each tab must
then show exactly its own numbers, computed here independently through ``lora_core``; no tab may
show an exception or an error; the server's memory must stay bounded. The latency of every
interaction is measured inside its tab (input event → the new state drawn and the script idle),
and the server's RSS is sampled throughout. The numbers are printed in pytest's terminal summary.

The class is marked ``classload``: it runs after the default run (``python -m pytest -n 0 -m classload``),
alone, so that no other test's worker shares the cores its latencies and memory are measured on.

A fast unit test below also audits every ``st.cache_data`` / ``st.cache_resource`` in ``lora_app``:
each must be bounded (``max_entries``, ``ttl`` or ``max_size``), and what ``st.cache_resource``
shares between sessions must be immutable.

The larger run with more sessions and rounds is ``python bench/bench_load.py`` (docs/bench_load.md).
"""
from __future__ import annotations

import ast
import dataclasses
import os
import statistics
import threading
import time
import types
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from helpers import server_log_path

ROOT = Path(__file__).resolve().parents[1]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"

# --- in-page instrumentation ------------------------------------------------------------------------
# __has/__eq test the DOM; __watch(cond) stamps the first input event after it is armed and the
# moment ``cond`` holds, so the latency is measured in the tab itself: Python's one-tab-at-a-time
# waiting adds nothing to it. The initial load is timed from navigation start in the same way.
INIT_JS = """
(() => {
  const idle = () => !!document.querySelector("%(idle)s");
  window.__idle = idle;
  window.__has = (sel, text) => [...document.querySelectorAll(sel)].some(e => e.textContent.includes(text));
  window.__eq = (sel, text) => [...document.querySelectorAll(sel)].some(e => e.textContent.trim() === text);
  const watch = (cond, set) => {
    const f = new Function('return (' + cond + ');');
    let obs = null, iv = null;
    const check = () => {
      let ok = false;
      try { ok = f(); } catch (e) { ok = false; }
      if (ok) { set(performance.now()); if (obs) obs.disconnect(); clearInterval(iv); }
    };
    const start = () => {
      obs = new MutationObserver(check);
      obs.observe(document.documentElement, {subtree: true, childList: true, characterData: true,
                                             attributes: true, attributeFilter: ['data-test-script-state']});
      iv = setInterval(check, 100);
      check();
    };
    if (document.documentElement) start(); else document.addEventListener('DOMContentLoaded', start);
  };
  window.__load = null;
  watch(`__idle() && document.querySelectorAll('.gtitle').length > 0`, t => { window.__load = t; });
  window.__watch = (cond, event) => {
    window.__lat = null;
    let t0 = performance.now();
    addEventListener(event, e => { t0 = e.timeStamp; }, {capture: true, once: true});
    watch(cond, t => { window.__lat = t - t0; });
  };
})();
""" % {"idle": IDLE.replace('"', '\\"')}  # noqa: UP031  (a format string would double the JavaScript's braces)


def js_str(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def has(selector: str, text: str) -> str:
    return f"__has({js_str(selector)}, {js_str(text)})"


def eq(selector: str, text: str) -> str:
    return f"__eq({js_str(selector)}, {js_str(text)})"


# --- the sessions ---------------------------------------------------------------------------------

@dataclass
class State:
    done_js: str                       # true in the tab once this state is drawn (with the script idle)
    check: Callable                    # check(page): raise AssertionError unless the tab shows exactly this state
    url: dict[str, str]                # query parameters this state must have in the tab's URL


@dataclass
class Session:
    name: str
    path: str
    states: tuple[State, State]        # before and after the session's own interaction
    act: Callable                      # act(page, forward: bool): move the control one way or back
    event: str = "keydown"             # the input event that starts the interaction's clock
    latencies: list[float] = field(default_factory=list)
    page: object = None


def numbers(page, title: str) -> np.ndarray:
    """The numbers written in the cells of the first heatmap whose title contains ``title``."""
    chart = page.locator("[data-testid='stPlotlyChart']").filter(has=page.locator(".gtitle", has_text=title)).first
    texts = chart.locator(".textpoint text").all_text_contents()
    return np.array([float(t.replace("\u2212", "-")) for t in texts])


def assert_cells(page, title: str, expected: np.ndarray) -> None:
    """The heatmap's cells show ``expected`` (row-major) to the decimals the figure prints."""
    from lora_app.figures.base import value_format

    fmt = value_format(expected)
    got = numbers(page, title)
    assert got.size == expected.size, f"{title}: {got.size} cells shown, {expected.size} expected"
    if fmt.endswith("e"):
        ok = np.allclose(got, expected.ravel(), rtol=0.01, atol=0)
    else:
        tol = 0.5 * 10.0 ** -int(fmt[1:-1]) + 1e-9
        ok = np.all(np.abs(got - expected.ravel()) <= tol)
    assert ok, f"{title}: shown {got.tolist()}, expected {np.round(expected.ravel(), 4).tolist()}"


def assert_title(page, text: str) -> None:
    assert page.locator(".gtitle", has_text=text).count() >= 1, f"no figure titled {text!r}"


def slider_key(label: str, key: str):
    def act(page, forward: bool):
        thumb = page.locator("[data-testid='stSlider']").filter(has_text=label).locator("input[type='range']")
        thumb.focus()
        page.keyboard.press(key if forward else {"ArrowRight": "ArrowLeft", "ArrowLeft": "ArrowRight"}[key])
    return act


def explore_session(i: int) -> Session:
    """Explore: a URL of its own, then the r slider (even i, on the matrices) or the n slider (odd i, on Q) moved by a key."""
    from lora_core import build_example, lora_forward, lora_scaling

    preset, seed, n, d, k, alpha = ("seed", "random")[i % 2], 11 + 7 * i, 2 + i % 4, 4 + i % 5, 3 + i % 3, 1 + 0.5 * i
    moves_r = i % 2 == 0

    def state(n: int, r: int) -> State:
        ex = build_example(preset, seed, n, d, k, r)
        q = lora_forward(ex.X, ex.W, ex.A, ex.B, scaling=lora_scaling(alpha, r)).q.numpy()

        def check(page):
            if moves_r:  # the first part: the matrices
                assert_title(page, f"X ({n}×{d})")
                assert_cells(page, f"A_Q ({d}×{r})", ex.A.numpy())
                assert_cells(page, f"X ({n}×{d})", ex.X.numpy())
            else:        # the Q part
                assert_cells(page, f"Q = X·(W_Q + ΔW_Q) ({n}×{k})", q)
                assert_cells(page, f"Q = X·W_Q ({n}×{k})", (ex.X @ ex.W).numpy())
        title = f"A_Q ({d}×{r})" if moves_r else f"Q = X·(W_Q + ΔW_Q) ({n}×{k})"
        return State(f"__idle() && {has('.gtitle', title)}", check,
                     {"preset": preset, "seed": str(seed), "n": str(n), "d": str(d), "k": str(k), "r": str(r),
                      "alpha": f"{alpha:g}", "view": "matrices" if moves_r else "q"})

    states = (state(n, 1), state(n, 2)) if moves_r else (state(n, 1), state(n + 1, 1))
    query = urllib.parse.urlencode({"preset": preset, "seed": seed, "n": n, "d": d, "k": k, "r": 1, "alpha": f"{alpha:g}",
                                    "view": "matrices" if moves_r else "q"})
    act = slider_key("LoRA rank", "ArrowRight") if moves_r else slider_key("n: tokens", "ArrowRight")
    return Session(f"explore-{i}", f"/?{query}", states, act)


def training_session(j: int) -> Session:
    """Training: its own seed, lr and step from the URL; then the Step slider (even j) or the → key (odd j)."""
    from lora_core import adamw_trace, build_example, make_target

    seed, lr, step = 3 + j, round(0.01 * (j + 1), 3), 5 + 4 * j
    ex = build_example("seed", seed, 3, 5, 3, 2)
    T = make_target(ex.X, ex.W, r_star=1, seed=seed).T
    trace = adamw_trace(*ex, T, scaling=1.0, steps=300, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    T = T.numpy()
    by_slider = j % 2 == 0

    def state(t: int, stage: str) -> State:
        q = trace[t - 1].q.numpy()
        heading = f"Step {t} of 300 · " + {"forward": "① Forward pass", "loss": "② Loss"}[stage]

        def check(page):
            assert page.locator("h3", has_text=heading).count() == 1, f"no heading {heading!r}"
            assert_cells(page, "target T (3×3)", T)
            if stage == "forward":
                assert_cells(page, "Q (3×3)", q)
            else:
                assert_cells(page, "Q − T (3×3)", q - T)
        return State(f"__idle() && {has('h3', heading)}", check,
                     {"seed": str(seed), "lr": f"{lr:g}", "step": str(t), "stage": stage})

    def act(page, forward: bool):
        if by_slider:
            slider_key("Step t", "ArrowRight")(page, forward)
        else:
            page.locator("h1").click()  # the page, not a widget, has the focus: the stepper's shortcuts
            page.keyboard.press("ArrowRight" if forward else "ArrowLeft")

    states = (state(step, "forward"), state(step + 1, "forward") if by_slider else state(step, "loss"))
    query = urllib.parse.urlencode({"seed": seed, "lr": f"{lr:g}", "step": step, "stage": "forward"})
    return Session(f"training-{j}", f"/training?{query}", states, act)


LORA_SETS = ("q", "q,v", "v,o", "none", "q,k,v,o")


def attention_session(a: int) -> Session:
    """Attention: its own example and adapters from the URL, then the W_K checkbox clicked."""
    from lora_core import build_example, lora_scaling
    from lora_core.attention import PROJECTIONS, attention_forward, make_attention_weights

    preset, seed, n, d, k, r = ("seed", "random")[a % 2], 50 + a, 4, 6, 3, 2
    ex = build_example(preset, seed, n, d, k, r)
    weights = make_attention_weights(d, seed, r=r, heads=1, d_head=k, preset=preset)
    W = [w.clone() for w in weights[:4]]
    pairs = {p: (A.clone(), B.clone()) for p, (A, B) in weights.lora.items()}
    W[0][:, :k], pairs["q"][0][:], pairs["q"][1][:, :k] = ex.W, ex.A, ex.B  # head 1 is the Explore page's Q
    s = lora_scaling(2.0, r)
    initial = set() if LORA_SETS[a] == "none" else set(LORA_SETS[a].split(","))

    def state(on: set) -> State:
        res = attention_forward(ex.X, *W, heads=1, lora={p: pairs[p] for p in PROJECTIONS if p in on}, scaling=s)
        k_title = "K_1 = X·(W_K + s·A_K·B_K)" if "k" in on else "K_1 = X·W_K"

        def check(page):  # the first part: Q, K and V of head 1
            assert_cells(page, f"{k_title} ({n}×{k})", res.k.numpy())
            assert_cells(page, "V_1 = ", res.v.numpy())
        lora = ",".join(t for t in ("q", "k", "v", "o", "ffn") if t in on) or "none"
        return State(f"__idle() && {has('.gtitle', k_title + ' (')}", check,
                     {"preset": preset, "seed": str(seed), "lora": lora})

    def act(page, forward: bool):
        page.get_by_text("W_K (key)").click()

    query = urllib.parse.urlencode({"preset": preset, "seed": seed, "n": n, "d": d, "k": k, "lora": LORA_SETS[a]})
    return Session(f"attention-{a}", f"/attention?{query}", (state(initial), state(initial ^ {"k"})), act, "pointerdown")


SCALE_VIEWS = (("llama-2-7b", "q,v", 8), ("roberta-large", "q", 16), ("mistral-7b", "q,v,o", 4), ("t5-base", "v", 2))


def scale_session(m: int) -> Session:
    """Scale: its own model, targets and rank from the URL, then the W_K pill clicked."""
    from lora_core.scale import MODELS, count_lora_params

    model, targets, r = SCALE_VIEWS[m]

    def state(chosen: tuple[str, ...]) -> State:
        value = f"{count_lora_params(model, chosen, r):,}"

        def check(page):
            metric = page.locator("[data-testid='stMetric']").filter(has_text="Trainable parameters")
            assert metric.locator("[data-testid='stMetricValue']").inner_text().strip() == value
            assert_title(page, f"Training memory of {MODELS[model].name}")
        return State(f"__idle() && {eq('[data-testid=stMetricValue]', value)}", check,
                     {"model": model, "targets": ",".join(chosen), "scale_r": str(r)})

    with_k = tuple(t for t in ("q", "k", "v", "o", "ffn") if t in targets.split(",") or t == "k")

    def act(page, forward: bool):
        page.get_by_role("button", name="W_K", exact=True).click()

    query = urllib.parse.urlencode({"model": model, "targets": targets, "scale_r": r})
    return Session(f"scale-{m}", f"/scale?{query}", (state(tuple(targets.split(","))), state(with_k)), act,
                   "pointerdown")


def make_sessions(count: int) -> list[Session]:
    """``count`` sessions, the kinds interleaved: 10 Explore, 5 Training, 5 Attention, 4 Scale in every 24."""
    mix = {explore_session: 10, training_session: 5, attention_session: 5, scale_session: 4}
    block = [m for _, _, m in sorted(((j + 0.5) / c, i, maker) for i, (maker, c) in enumerate(mix.items())
                                     for j in range(c))]
    seen: dict = {}
    out = []
    for i in range(count):
        maker = block[i % len(block)]
        idx = seen[maker] = seen.get(maker, -1) + 1
        limit = {attention_session: len(LORA_SETS), scale_session: len(SCALE_VIEWS)}.get(maker)
        s = maker(idx % limit if limit else idx)
        s.name = f"{s.name}#{i}"
        out.append(s)
    return out


# --- the server's memory ------------------------------------------------------------------------------

def server_process(url: str) -> psutil.Process:
    """The `streamlit run` serving ``url``: a child of this process started by the ``app_url`` fixture."""
    port = str(urllib.parse.urlsplit(url).port)
    for proc in psutil.Process().children(recursive=True):
        try:
            cmd = proc.cmdline()
        except psutil.Error:
            continue
        if "streamlit" in " ".join(cmd) and port in cmd:
            return proc
    for conn in psutil.net_connections(kind="tcp"):  # a server started some other way
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == int(port) and conn.pid:
            return psutil.Process(conn.pid)
    raise RuntimeError(f"no streamlit server found on port {port}")


class RssSampler:
    """Samples a process's RSS every ``interval`` seconds on a thread; ``peak`` is the largest seen."""

    def __init__(self, proc: psutil.Process, interval: float = 0.1):
        self.proc, self.interval, self.peak = proc, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> int:
        rss = self.proc.memory_info().rss
        self.peak = max(self.peak, rss)
        return rss

    def _run(self):
        while not self._stop.wait(self.interval):
            try:
                self.now()
            except psutil.Error:
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _browser_pss(server: psutil.Process) -> int:
    """Proportional set size of every process this one started except the server: the browser, once."""
    total = 0
    for proc in psutil.Process().children(recursive=True):
        if proc.pid != server.pid:
            try:
                total += proc.memory_full_info().pss
            except (psutil.Error, AttributeError):
                pass
    return total


def repeat_growth(rss: dict, rounds: int) -> tuple[str, str, int]:
    """RSS growth between two moments when every tab shows the same states as before: the last round
    and the one two before it (with two rounds: the first load, which round 2 comes back to)."""
    if rounds < 2:
        raise ValueError("the growth check needs at least two rounds: there and back")
    last = f"round {rounds}"
    earlier = f"round {rounds - 2}" if rounds >= 3 else "loaded"
    return earlier, last, rss[last] - rss[earlier]


def _cpu_seconds(server: psutil.Process) -> dict[str, float]:
    """CPU seconds (user + system) so far: the server, and every other process this one started (the browser)."""
    out = {"server": 0.0, "browser": 0.0}
    for proc in psutil.Process().children(recursive=True):
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        out["server" if proc.pid == server.pid else "browser"] += t.user + t.system
    if server.pid not in {p.pid for p in psutil.Process().children(recursive=True)}:
        t = server.cpu_times()
        out["server"] = t.user + t.system
    return out


# --- driving the tabs ---------------------------------------------------------------------------------

def eventually(check: Callable, timeout: float = 15.0):
    """Retry ``check`` until it passes: a figure may still be drawing when the script goes idle."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def assert_state(session: Session, state: State) -> None:
    page = session.page

    def check():
        state.check(page)
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))
        wrong = {key: (query.get(key), value) for key, value in state.url.items() if query.get(key) != value}
        assert not wrong, f"URL {page.url}: (shown, expected) {wrong}"
    try:
        eventually(check)
    except AssertionError as err:
        raise AssertionError(f"{session.name}: {err}") from None
    assert page.locator("[data-testid='stException']").count() == 0, f"{session.name}: an exception is shown"
    alerts = page.locator("[data-testid='stAlertContentError'], [data-testid='stAlertContentWarning']")
    assert alerts.count() == 0, f"{session.name}: {alerts.all_inner_texts()}"


def open_sessions(ctxs: list, url: str, sessions: list[Session], errors: list, wait_ms: int) -> list[float]:
    """Open every session as a tab (spread over the browser contexts ``ctxs``) at once; their load times, s."""
    contexts = len(ctxs)
    for ctx in ctxs:
        ctx.add_init_script(INIT_JS)
    for i, s in enumerate(sessions):
        s.page = ctxs[i % contexts].new_page()
        s.page.on("pageerror", lambda err, name=s.name: errors.append(f"{name}: {err}"))
        s.page.goto(url + s.path, wait_until="commit")  # do not wait: every tab loads concurrently
    loads = []
    for s in sessions:
        s.page.wait_for_function(f"window.__load !== null && {s.states[0].done_js}", timeout=wait_ms, polling=200)
        loads.append(s.page.evaluate("window.__load") / 1e3)
    return loads


def run_round(sessions: list[Session], forward: bool, wait_ms: int) -> None:
    """Every tab moves its control (one after another, without waiting), then each is awaited and checked."""
    target = 1 if forward else 0
    for s in sessions:
        s.page.evaluate("([cond, event]) => window.__watch(cond, event)", [s.states[target].done_js, s.event])
        s.act(s.page, forward)
    for s in sessions:
        s.page.wait_for_function("window.__lat !== null", timeout=wait_ms, polling=200)
        s.latencies.append(s.page.evaluate("window.__lat") / 1e3)
    for s in sessions:
        assert_state(s, s.states[target])


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(np.ceil(p / 100 * len(ordered))) - 1))]


def classroom(browser, url: str, n_sessions: int, rounds: int, contexts: int, wait_s: float = 150) -> dict:
    """The whole scenario; returns the measurements. Raises AssertionError on any wrong or failed tab."""
    proc = server_process(url)
    log = server_log_path()
    log_start = log.stat().st_size if log.exists() else 0
    sessions = make_sessions(n_sessions)
    errors: list[str] = []
    rss = {"before": proc.memory_info().rss}
    load_before = os.getloadavg()[0]  # what else the machine was doing: our own tabs count once they run
    cpu_before = _cpu_seconds(proc)
    t_start = time.perf_counter()
    ctxs = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(contexts)]
    try:
        with RssSampler(proc) as sampler:
            loads = open_sessions(ctxs, url, sessions, errors, int(wait_s * 1e3))
            for s in sessions:
                assert_state(s, s.states[0])
            rss["loaded"] = sampler.now()
            phases = {"load": time.perf_counter() - t_start}
            cpu_loaded = _cpu_seconds(proc)
            browser_pss = _browser_pss(proc)
            for rnd in range(rounds):  # forward, back, forward, …: every second round repeats one exactly
                t_round = time.perf_counter()
                run_round(sessions, rnd % 2 == 0, int(wait_s * 1e3))
                rss[f"round {rnd + 1}"] = sampler.now()
                phases[f"round {rnd + 1}"] = time.perf_counter() - t_round
            elapsed = time.perf_counter() - t_start
            cpu_end = _cpu_seconds(proc)
            cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_end.items()}
            cpu["server, rounds"] = cpu_end["server"] - cpu_loaded["server"]
        rss["peak"] = sampler.peak
    finally:
        for ctx in ctxs:
            ctx.close()
    assert not errors, f"JavaScript errors in the tabs: {errors}"
    if log.exists():
        new = log.read_text(errors="replace")[log_start:]
        assert "Traceback" not in new, f"the server logged an exception:\n{new[-3000:]}"
    interactions = [lat for s in sessions for lat in s.latencies]
    by_kind: dict[str, list[float]] = {}
    for s in sessions:
        by_kind.setdefault(s.name.split("-")[0], []).extend(s.latencies)
    return {"sessions": n_sessions, "contexts": contexts, "rounds": rounds, "elapsed_s": elapsed,
            "load_s": loads, "interaction_s": interactions, "by_kind": by_kind, "rss": rss, "pid": proc.pid,
            "cpu_s": cpu, "browser_pss": browser_pss, "phases": phases,
            "load_before": load_before, "growth": repeat_growth(rss, rounds)}


def summary_lines(m: dict) -> list[str]:
    ms = lambda v: f"{1e3 * v:.0f} ms"
    lat, loads = m["interaction_s"], m["load_s"]
    mib = {k: f"{v / 2**20:.0f} MiB" for k, v in m["rss"].items()}
    lines = [
        f"{m['sessions']} sessions in {m['contexts']} browser contexts, {m['rounds']} rounds of interactions, "
        f"{m['elapsed_s']:.1f} s (" + ", ".join(f"{k} {v:.0f} s" for k, v in m["phases"].items()) + ")",
        f"first load (navigation → drawn and idle), all tabs at once: p50 {ms(percentile(loads, 50))}, "
        f"p95 {ms(percentile(loads, 95))}, max {ms(max(loads))}",
        f"interaction (input → new state drawn and idle), {len(lat)} under load: p50 {ms(percentile(lat, 50))}, "
        f"p95 {ms(percentile(lat, 95))}, max {ms(max(lat))}",
        "  by page: " + ", ".join(f"{kind} p50 {ms(statistics.median(v))} / p95 {ms(percentile(v, 95))}"
                                  for kind, v in m["by_kind"].items()),
        "server RSS: " + ", ".join(f"{k} {v}" for k, v in mib.items())
        + f"; {m['growth'][1]} − {m['growth'][0]} (same states) {m['growth'][2] / 2**20:+.1f} MiB",
        f"CPU used: server {m['cpu_s']['server']:.0f} s ({1e3 * m['cpu_s']['server, rounds'] / len(lat):.0f} ms "
        f"per interaction), browser {m['cpu_s']['browser']:.0f} s; browser PSS after load "
        f"{m['browser_pss'] / 2**30:.1f} GiB (machine: {os.cpu_count()} cores, load average "
        f"{m['load_before']:.1f} before the test)",
    ]
    return lines


# --- the tests ----------------------------------------------------------------------------------------

N_SESSIONS, ROUNDS, CONTEXTS = 20, 2, 2  # about 2 minutes of CPU on 2 cores: see docs/bench_load.md
PEAK_RSS_LIMIT = 2 * 2**30        # the whole server, 20 sessions and their caches
REPEAT_GROWTH_LIMIT = 100 * 2**20  # the same states again: caches hit, nothing should pile up


class _Report:
    """Prints the measurements in pytest's terminal summary (no -s needed)."""

    def __init__(self, lines):
        self.lines = lines

    def pytest_terminal_summary(self, terminalreporter):
        terminalreporter.section("classroom load (tests/test_load.py)")
        for line in self.lines:
            terminalreporter.write_line(line)


@pytest.mark.browser
@pytest.mark.classload  # timed and 2 minutes long: CI runs it after the default run, alone (-n 0), not beside a worker
@pytest.mark.timeout(600)  # about 2 minutes alone on 2 cores; more when the machine is shared
def test_classroom_of_20_sessions_each_sees_only_its_own_state(browser_type, app_url, request):
    """20 tabs at once, each with its own view and its own control: own numbers, no errors, flat memory.

    Its own Chromium, without the default run's --process-per-site: every tab gets a renderer of its
    own, as every student's laptop would.
    """
    from conftest import CHROMIUM, STUDENT_ARGS

    browser = browser_type.launch(executable_path=CHROMIUM, args=STUDENT_ARGS)
    warm = browser.new_page()  # the first run of app.py switches the server off pages/-folder mode
    warm.goto(app_url)
    warm.wait_for_selector(IDLE)
    warm.close()

    try:
        m = classroom(browser, app_url, N_SESSIONS, ROUNDS, CONTEXTS)
    finally:
        browser.close()
    lines = summary_lines(m)
    request.config.pluginmanager.register(_Report(lines), "classroom-load-report")

    rss = m["rss"]
    assert rss["peak"] < PEAK_RSS_LIMIT, lines[-2]
    assert m["growth"][2] < REPEAT_GROWTH_LIMIT, lines[-2]
    assert percentile(m["interaction_s"], 95) < 30, lines[2]  # generous: a 2-core machine shared with others


# --- the cache audit ----------------------------------------------------------------------------------

def _cache_decorators():
    """(module, function, kind, keywords, n_params) for every st.cache_* decorator in the app's code."""
    found = []
    for path in sorted([*(ROOT / "lora_app").rglob("*.py"), *(ROOT / "pages").glob("*.py"), ROOT / "app.py"]):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for dec in node.decorator_list:
                call = dec if isinstance(dec, ast.Call) else None
                target = call.func if call else dec
                name = ast.unparse(target)
                if name.split(".")[-1] in ("cache_data", "cache_resource", "cache", "experimental_memo",
                                           "experimental_singleton", "lru_cache"):
                    keywords = {kw.arg for kw in call.keywords} if call else set()
                    params = len(node.args.posonlyargs + node.args.args + node.args.kwonlyargs)
                    params += bool(node.args.vararg) + bool(node.args.kwarg)
                    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                    found.append((module, node.name, name.split(".")[-1], keywords, params))
    return found


def test_every_cache_is_bounded():
    """max_entries, ttl or max_size on every cache (maxsize on functools'), even one whose function takes no arguments.

    functools.cache is the unbounded lru_cache: the audit sees it as a cache with no bound.
    """
    caches = _cache_decorators()
    assert len(caches) >= 9  # the audit found them: explore, training, attention, rank, scale
    unbounded = [f"{mod}.{fn} ({kind})" for mod, fn, kind, kws, params in caches
                 if not kws & {"max_entries", "ttl", "max_size", "maxsize"}]
    assert not unbounded, f"caches that can grow without bound: {unbounded}"


def test_the_decorators_are_what_streamlit_runs():
    """The AST audit and Streamlit's own view of the cached functions agree on the bounds."""
    import importlib

    for mod, fn, _kind, _kws, _params in _cache_decorators():
        if not mod.startswith("lora_app."):
            continue  # importing a page or app.py would run it; the AST audit above covers them
        function = getattr(importlib.import_module(mod), fn)
        if hasattr(function, "cache_parameters"):  # functools': a None maxsize is no bound
            assert function.cache_parameters()["maxsize"] is not None, f"{mod}.{fn}"
            continue
        info = function._info
        bounded = info.max_entries is not None or info.ttl not in (None, float("inf")) or \
            getattr(info, "max_size_bytes", None) is not None
        assert bounded, f"{mod}.{fn}"


def _immutable_problems(value, where: str, depth: int = 0) -> list[str]:
    """Where ``value`` could be changed in place by one session under another's feet."""
    if depth > 8:
        return []
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, torch.device, torch.dtype,
                                           range, type(Ellipsis))):
        return []
    if isinstance(value, np.ndarray):
        return [] if not value.flags.writeable else [f"{where}: writable numpy array"]
    if isinstance(value, np.generic):
        return []
    if torch.is_tensor(value):
        return [f"{where}: torch tensor (mutable in place)"]
    if isinstance(value, types.MappingProxyType):
        return [p for k, v in value.items() for p in _immutable_problems(v, f"{where}[{k!r}]", depth + 1)]
    if isinstance(value, (tuple, frozenset)):
        fields = getattr(value, "_fields", None) or range(len(value))
        items = zip(fields, value) if isinstance(value, tuple) else enumerate(value)
        return [p for k, v in items for p in _immutable_problems(v, f"{where}.{k}", depth + 1)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if not value.__dataclass_params__.frozen:
            return [f"{where}: dataclass {type(value).__name__} is not frozen"]
        return [p for f in dataclasses.fields(value)
                for p in _immutable_problems(getattr(value, f.name), f"{where}.{f.name}", depth + 1)]
    return [f"{where}: {type(value).__name__} is mutable"]


def test_what_cache_resource_shares_is_immutable(monkeypatch):
    """Every st.cache_resource result, for a representative call, is read-only all the way down."""
    import importlib

    from lora_app.config import ExploreConfig, TrainingConfig

    monkeypatch.setenv("LORA_DEVICE", "cpu")
    run20 = importlib.import_module("lora_app.compute.training").training_run._info.func(
        TrainingConfig(ExploreConfig(), steps=20))
    examples = {"device_choice": (), "training_run": (TrainingConfig(ExploreConfig(), steps=20),),
                "_replayed": (run20, run20.config, 2)}
    resources = [(mod, fn) for mod, fn, kind, _, _ in _cache_decorators() if kind == "cache_resource"]
    assert {fn for _, fn in resources} <= set(examples), f"add an example call for {resources}"
    for mod, fn in resources:
        value = getattr(importlib.import_module(mod), fn)._info.func(*examples[fn])
        problems = _immutable_problems(value, fn)
        assert not problems, problems
    run = importlib.import_module("lora_app.compute.training").training_run._info.func(examples["training_run"][0])
    with pytest.raises(ValueError):
        run.states["A"][0, 0, 0] = 1.0  # read-only: a session cannot write into another's view
    with pytest.raises(TypeError):
        run.states["A"] = None
