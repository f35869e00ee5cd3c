"""LoRA on the real transformer (lora_core.tiny), measured: python bench/bench_real.py [--quick] [--write]

1. One run at the defaults (``FinetuneSettings()``), LoRA against full fine-tuning, with torch
   threads = 1 and = 2: wall time around ``finetune`` (median of repeats, the kinds alternating),
   the run's own ``wall_s`` (the training loop) and ``peak_bytes``, and the process's CPU time, which
   shows an OpenMP pool spinning on the second core. Target: ≤ 10 s.
2. The fixed-budget placement grid (``budget_grid``: 9 placements + full) per task. Target: ≤ 3 min.
3. The rank sweep (``rank_sweep``, r = 1…16) per task, and the family (``family_grid``: LoRA, DoRA, QLoRA,
   PiSSA, LoRA+, VeRA at r = 4 and at r = 32, full) per task, with each variant's time, memory and accuracy.
   All at torch threads = ``lora_app.compute.jobs.TRAIN_THREADS``, the server's training setting.
4. Another session's slider, end to end: a fresh ``streamlit run app.py`` (LORA_DEVICE=cpu,
   LORA_RUNS_DIR a fresh temporary folder, so nothing is cached from an earlier run) and headless
   Chromium. Explore's r slider is moved with the keyboard and timed in the page exactly as
   bench/bench_browser.py does (its functions are imported): keydown → the first frame showing every
   figure at the new value. Phases, one after the other:

   - idle: nothing else runs in the server;
   - training in the server: a second browser session opens ``/real?view=where`` and clicks
     "Run the grid" (both tasks, 20 runs in the server's one training thread); samples count while
     runs are still being written to LORA_RUNS_DIR. If the grid ends before enough samples, a fresh
     server (fresh runs folder) is started and the grid clicked again;
   - training in a separate process: the same grid trained by another Python process at the same
     torch threads, so it takes a core but not the server's GIL;
   - idle again, to see the drift of the shared machine.

   Target: p95 while training ≤ 2 × p95 idle. Inside the server (bench_browser's ``--server-timing``
   wrapper) each interaction's script run is timed on the wall and on the script thread's CPU clock:
   wall − CPU is time the script thread was ready but not running, waiting for the GIL or for a core.
   With the trainer in another process only the core is contended, so the difference between the two
   training phases is the GIL's share. The server's CPU (all threads) and its busiest thread are read
   from /proc (psutil) over each phase.

``--quick``: fewer repeats and samples, a smoke run. ``--write``: the report also goes to
docs/bench_real.md. ``--skip-browser`` / ``--only-browser`` run one half. A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]
os.environ.setdefault("LORA_DEVICE", "cpu")

import bench_browser as bb
import torch

from helpers import start_streamlit
from lora_core.experiments import budget_grid, family_grid, rank_sweep
from lora_core.finetune import FinetuneSettings, finetune
from lora_core.tiny import ADAPT_TASKS, load_base_model

DOC = ROOT / "docs" / "bench_real.md"
SINGLE_TARGET_S = 10.0
GRID_TARGET_S = 180.0
LATENCY_RATIO_TARGET = 2.0
GRID_BUTTON = "real_grid_run"
GRID_PATH = "/real?view=where"
PAGE_WAIT_MS = 60_000

LINES: list[str] = []


def say(line: str = "") -> None:
    print(line, flush=True)
    LINES.append(line)


def table(cols: list[str], rows: list[list]) -> None:
    """A markdown table, numbers right-aligned."""
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    say("| " + " | ".join(f"{c:<{w}}" for c, w in zip(cols, widths)) + " |")
    say("|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|")
    for r in rows:
        say("| " + " | ".join(f"{str(v):<{w}}" if i == 0 else f"{str(v):>{w}}"
                              for i, (v, w) in enumerate(zip(r, widths))) + " |")


def machine() -> None:
    model = "unknown"
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from lora_app.compute.jobs import TRAIN_THREADS
    say(f"machine: {platform.machine()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {model}")
    say(f"python {platform.python_version()}, torch {torch.__version__}, default torch threads "
        f"{torch.get_num_threads()} (interop {torch.get_num_interop_threads()}), "
        f"server training threads (lora_app.compute.jobs.TRAIN_THREADS) {TRAIN_THREADS}, device cpu, float32")
    load = os.getloadavg()
    say(f"load average (1, 5, 15 min) at start: {', '.join(f'{x:.2f}' for x in load)}")
    if load[0] > 0.5 * (os.cpu_count() or 1):
        say(f"The machine was not quiet: a 1-minute load average of {load[0]:.1f} on {os.cpu_count()} cores means "
            "other processes shared the cores, so these numbers are noisy (see the ranges and the two idle phases).")
    say(f"date: {time.strftime('%Y-%m-%d %H:%M')}")


# --- 1-3: the core, in this process ------------------------------------------------------------

def timed(base, settings: FinetuneSettings) -> dict:
    c0, t0 = time.process_time(), time.perf_counter()
    run = finetune(base, settings)
    return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, "run_wall": run.wall_s,
            "peak": run.peak_bytes, "acc": run.accuracy, "trainable": run.trainable, "frozen": run.frozen_bytes}


def single_runs(base, repeats: int) -> None:
    say()
    say(f"## 1. One run at the defaults (task {FinetuneSettings().task}, {FinetuneSettings().steps} steps), "
        f"median of {repeats}")
    say()
    say(f"wall = around finetune() (the held-out evaluations included); run wall_s = the run's own loop time; "
        f"CPU = the process's CPU time (above wall: a second thread was busy, or spinning). Target ≤ {SINGLE_TARGET_S:.0f} s.")
    say()
    default = torch.get_num_threads()
    kinds = {"LoRA": FinetuneSettings(), "full": FinetuneSettings(full=True)}
    rows = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            timed(base, FinetuneSettings(steps=20))  # warm the allocator and the thread pool
            samples = {k: [] for k in kinds}
            for _ in range(repeats):
                for k, s in kinds.items():
                    samples[k].append(timed(base, s))
            for k, ss in samples.items():
                med = {f: statistics.median(x[f] for x in ss) for f in ("wall", "cpu", "run_wall")}
                rows.append([k, threads, f"{med['wall']:.2f} s", f"{min(x['wall'] for x in ss):.2f}–"
                             f"{max(x['wall'] for x in ss):.2f} s", f"{med['run_wall']:.2f} s", f"{med['cpu']:.2f} s",
                             f"{ss[0]['peak'] / 2**20:.2f} MiB", f"{ss[0]['trainable']:,}", f"{ss[0]['acc']:.4f}",
                             "yes" if med["wall"] <= SINGLE_TARGET_S else "NO"])
    finally:
        torch.set_num_threads(default)
    table(["run", "threads", "wall", "range", "run wall_s", "CPU", "peak_bytes", "trainable", "accuracy", "≤ 10 s"],
          rows)
    walls = {(r[0], r[1]): float(r[2].split()[0]) for r in rows}
    say()
    worst = max(walls[(k, 2)] / walls[(k, 1)] for k in kinds)
    why = (" The tensors are small (batch 64 × 8 positions × 32-64 features; the held-out set 1000 × 8): an op "
           "split over two OpenMP threads saves microseconds, and while the second core is busy with another "
           "process each split op waits for a thread the OS has not scheduled." if worst > 1.5 else
           " The second thread changes little: the tensors are small (batch 64 × 8 positions × 32-64 features).")
    say("2 threads against 1: " + ", ".join(f"{k} {walls[(k, 2)] / walls[(k, 1)]:.2f}× the wall time" for k in kinds)
        + "." + why)


def experiment(base, name: str, settings: list[FinetuneSettings], threads: int) -> tuple[float, list[dict]]:
    default = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        t0 = time.perf_counter()
        out = [timed(base, s) for s in settings]
        return time.perf_counter() - t0, out
    finally:
        torch.set_num_threads(default)


def grids(base, threads: int) -> None:
    say()
    say(f"## 2-3. The experiments per task, torch threads = {threads} (the server's training setting)")
    say()
    rows, family = [], {}
    for task in ADAPT_TASKS:
        base_s = FinetuneSettings(task=task)
        for name, settings, target in (("budget grid (9 placements + full)", budget_grid(base.cfg, base_s), GRID_TARGET_S),
                                       ("rank sweep (r = 1, 2, 4, 8, 16)", rank_sweep(base_s), None),
                                       ("the family (7 runs + full)", family_grid(base.cfg, base_s), None)):
            total, runs = experiment(base, name, settings, threads)
            walls = [r["wall"] for r in runs]
            rows.append([f"{task}: {name}", len(runs), f"{total:.1f} s", f"{statistics.median(walls):.2f} s",
                         f"{max(walls):.2f} s", f"{sum(r['cpu'] for r in runs):.1f} s",
                         ("yes" if total <= target else "NO") if target else "–"])
            if name.startswith("the family"):
                family[task] = list(zip(settings, runs))
    table(["experiment", "runs", "total", "median run", "slowest run", "CPU", "≤ 3 min"], rows)
    say()
    say("The family, run by run (the defaults: Q and V in both layers, 300 steps); time against LoRA's on the same task.")
    say()
    rows = []
    for task, pairs in family.items():
        lora = next(r for s, r in pairs if not s.full and s.variant == "lora")
        for s, r in pairs:
            name = "full fine-tuning" if s.full else f"{s.variant} r={s.r}"
            rows.append([task, name, f"{r['trainable']:,}", f"{r['wall']:.2f} s", f"{r['wall'] / lora['wall']:.2f}×",
                         f"{r['peak'] / 1e3:,.1f} kB", f"{r['frozen'] / 1e3:,.1f} kB", f"{r['acc']:.4f}"])
    table(["task", "run", "trained", "wall", "× LoRA", "peak", "frozen as stored", "accuracy"], rows)


# --- 4: another session's slider while one trains ------------------------------------------------

class Server:
    """A fresh app server: its own runs folder and script-run log."""

    def __init__(self, log_dir: Path, n: int):
        self.runs = Path(tempfile.mkdtemp(prefix=f"runs{n}_", dir=log_dir))
        self.timing = log_dir / f"server{n}.runs.jsonl"
        self.proc, self.url = start_streamlit(
            "app.py", log_dir / f"server{n}.log", launcher=["-c", bb.SERVER_TIMING],
            env={"BENCH_SERVER_LOG": str(self.timing), "LORA_RUNS_DIR": str(self.runs)}, timeout_s=90)
        import psutil
        self.ps = psutil.Process(self.proc.pid)

    def saved(self) -> int:
        return len(list(self.runs.glob("*.safetensors")))

    def cpu(self) -> dict:
        t = self.ps.cpu_times()
        return {"at": time.perf_counter(), "total": t.user + t.system,
                "threads": {th.id: th.user_time + th.system_time for th in self.ps.threads()}}

    def run_log(self) -> list[dict]:
        if not self.timing.exists():
            return []
        rows = [json.loads(x) for x in self.timing.read_text().splitlines() if x.strip()]
        return sorted((r for r in rows if "start" in r or "finished_written" in r),
                      key=lambda r: r.get("start", r.get("finished_written")))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def open_app(browser, server: Server):
    """Leave Streamlit's pages-directory mode (as bench_browser does), then warm Explore's r slider."""
    first = browser.new_page()
    first.goto(server.url + "/")
    first.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=bb.TIMEOUT_MS)
    first.close()
    t = bb.Target("explore", "r 2 ↔ 3 (sidebar)", "/", "r: LoRA rank")
    bb.warm(t, browser, server.url)
    return t


def start_grid(browser, server: Server):
    """A second session opens the Real model page's placement tab and clicks "Run the grid"."""
    ctx = browser.new_context(viewport=bb.VIEWPORT)
    page = ctx.new_page()
    page.goto(server.url + GRID_PATH)
    button = page.locator(f".st-key-{GRID_BUTTON} button")
    try:
        button.first.wait_for(state="visible", timeout=PAGE_WAIT_MS)
    except Exception:  # noqa: BLE001 - say what is missing, not a timeout's stack
        ctx.close()
        raise SystemExit(f"no \"Run the grid\" button (Streamlit key {GRID_BUTTON!r}) at {GRID_PATH} within "
                         f"{PAGE_WAIT_MS / 1000:.0f} s: is pages/real.py in this checkout and registered in app.py? "
                         "Run with --skip-browser for the core numbers alone.") from None
    button.first.click()
    deadline = time.perf_counter() + 60
    while server.saved() == 0 and not _busy(server):
        if time.perf_counter() > deadline:
            raise SystemExit("clicked \"Run the grid\" but the server did not start training within 60 s")
        time.sleep(0.2)
    return ctx


def _busy(server: Server, window: float = 0.5) -> bool:
    """Some thread of the server spent most of a short window on the CPU (the training thread)."""
    a = server.cpu()
    time.sleep(window)
    b = server.cpu()
    return max((b["threads"][k] - a["threads"].get(k, 0.0) for k in b["threads"]), default=0) > 0.6 * window


def separate_trainer() -> subprocess.Popen:
    """Another process training the grid for both tasks over and over, at the server's training threads."""
    code = (
        "import sys, torch\n"
        "from lora_app.compute.jobs import TRAIN_THREADS\n"
        "from lora_core.experiments import budget_grid\nfrom lora_core.finetune import FinetuneSettings, finetune\n"
        "from lora_core.tiny import ADAPT_TASKS, load_base_model\n"
        "torch.set_num_threads(TRAIN_THREADS)\n"
        "base = load_base_model()\n"
        "grid = [s for t in ADAPT_TASKS for s in budget_grid(base.cfg, FinetuneSettings(task=t))]\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    for s in grid:\n"
        "        finetune(base, s)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "LORA_DEVICE": "cpu"})
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("the separate training process did not start")
    return proc


def phase_stats(name: str, samples: list[dict], runs: list[dict], cpu0: dict, cpu1: dict, note: str = "") -> dict:
    """Latency percentiles, each interaction's script run (the first to start after its request), CPU."""
    good = [s for s in samples if s["ok"]]
    shown = [s["shown"] for s in good]
    run_ms, cpu_ms, wait_ms, done_ms = [], [], [], []
    written = [r["finished_written"] for r in runs if "finished_written" in r]
    runs = [r for r in runs if "start" in r]
    for s in good:
        t0 = s["request_mono"]
        if t0 is None:
            continue
        w = next((w for w in written if w >= t0), None)
        if w is not None and w - t0 < 5:
            done_ms.append((w - t0) * 1e3)
        r = next((r for r in runs if r["start"] >= t0 - 0.002), None)
        if r is not None and r["start"] - t0 < 5:
            run_ms.append(r["run_ms"] + r["gc_ms"])
            cpu_ms.append(r["cpu_ms"])
            wait_ms.append(r["run_ms"] + r["gc_ms"] - r["cpu_ms"])
    wall = cpu1["at"] - cpu0["at"]
    per_thread = sorted((cpu1["threads"][k] - cpu0["threads"].get(k, 0.0) for k in cpu1["threads"]), reverse=True)
    return {"phase": name, "n": len(good), "missed": len(samples) - len(good),
            "p50": bb.pct(shown, 50), "p95": bb.pct(shown, 95),
            "run50": bb.pct(run_ms, 50), "run95": bb.pct(run_ms, 95), "cpu50": bb.pct(cpu_ms, 50),
            "wait50": bb.pct(wait_ms, 50), "wait95": bb.pct(wait_ms, 95),
            "done50": bb.pct(done_ms, 50), "done95": bb.pct(done_ms, 95),
            "server_cpu": 100 * (cpu1["total"] - cpu0["total"]) / wall,
            "top_thread": 100 * per_thread[0] / wall if per_thread else float("nan"),
            "second_thread": 100 * per_thread[1] / wall if len(per_thread) > 1 else float("nan"),
            "load": os.getloadavg()[0], "note": note}


def measure(t, n: int, keep_going=lambda: True) -> list[dict]:
    out = []
    t.page.bring_to_front()
    while len(out) < n and keep_going():
        out.append(bb.interact(t, len(out)))
    return out


def browser_part(samples: int) -> None:
    from playwright.sync_api import sync_playwright

    say()
    say("## 4. Another session's slider while one session trains (headless Chromium, end to end)")
    say()
    log_dir = Path(tempfile.mkdtemp(prefix="bench_real_"))
    servers: list[Server] = []
    trainer = None
    results = []
    try:
        servers.append(Server(log_dir, 0))
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=bb.CHROMIUM, args=bb.CHROMIUM_ARGS)
            say(f"browser: Chromium {browser.version} (headless); Explore (/), r 2 ↔ 3 with the keyboard, "
                f"as bench_browser.py; {samples} interactions per phase")
            say()
            server = servers[-1]
            t = open_app(browser, server)

            c0 = server.cpu()
            idle = measure(t, samples)
            results.append(phase_stats("idle", idle, server.run_log(), c0, server.cpu()))
            print(f"idle: p50 {results[-1]['p50']:.0f} ms, p95 {results[-1]['p95']:.0f} ms", flush=True)

            # training in the server, started from the page; a fresh server when a grid ends early
            training, grids, grid_s = [], 0, []
            cpu_parts = []
            while len(training) < samples and grids < 4:
                if grids:
                    server.stop()
                    servers.append(Server(log_dir, len(servers)))
                    server = servers[-1]
                    t.page.context.close()
                    t = open_app(browser, server)
                trainer_ctx = start_grid(browser, server)
                grids += 1
                g0 = time.perf_counter()
                c0 = server.cpu()
                # a run of the grid is finished when its file appears; 20 files: the grid is done
                got = measure(t, samples - len(training), lambda: server.saved() < 20)
                training += [s for s in got if s["ok"]]
                cpu_parts.append((c0, server.cpu()))
                while server.saved() < 20 and time.perf_counter() - g0 < 600:
                    time.sleep(0.5)
                grid_s.append(time.perf_counter() - g0)
                trainer_ctx.close()
                print(f"training (grid {grids}): {len(training)} samples; the grid took ≥ {grid_s[-1]:.0f} s "
                      f"with the slider in use", flush=True)
            c0, c1 = cpu_parts[0]
            # CPU figures from the first grid's phase; latency over all of them
            # every server logs on time.monotonic, the clock of the requests: their logs merge
            runs = sorted((r for s in servers for r in s.run_log()), key=lambda r: r.get("start", r.get("finished_written")))
            results.append(phase_stats("training in the server (Run the grid)", training, runs, c0, c1,
                                       f"{grids} grid(s) of 20 runs, each {min(grid_s):.0f}–{max(grid_s):.0f} s "
                                       "from the click to the last file (the slider in use meanwhile); "
                                       "CPU columns from the first"))
            print(f"training: p50 {results[-1]['p50']:.0f} ms, p95 {results[-1]['p95']:.0f} ms", flush=True)

            trainer = separate_trainer()
            import psutil
            tp = psutil.Process(trainer.pid)
            time.sleep(1.0)
            c0, tc0 = server.cpu(), sum(tp.cpu_times()[:2])
            sep = measure(t, samples)
            c1, tc1 = server.cpu(), sum(tp.cpu_times()[:2])
            results.append(phase_stats("training in a separate process", sep, server.run_log(), c0, c1,
                                       f"the training process used {100 * (tc1 - tc0) / (c1['at'] - c0['at']):.0f} % "
                                       "of a core over the phase"))
            trainer.kill()
            trainer.wait()
            trainer = None
            print(f"separate: p50 {results[-1]['p50']:.0f} ms, p95 {results[-1]['p95']:.0f} ms", flush=True)

            c0 = server.cpu()
            again = measure(t, max(samples // 2, 4))
            results.append(phase_stats("idle again", again, server.run_log(), c0, server.cpu()))
            browser.close()
    finally:
        if trainer is not None:
            trainer.kill()
        for s in servers:
            s.stop()

    idle_p95 = results[0]["p95"]
    say("Latency: keydown → the first frame showing every figure at the new value (ms). ratio = p95 / idle p95; "
        f"target ≤ {LATENCY_RATIO_TARGET:.0f}×. Inside the server, per interaction's script run (ms, p50/p95): "
        "run = wall time of the rerun (Streamlit's gc after it included), script CPU = the script thread's CPU time, "
        "waiting = run − CPU, time ready but not running (for the GIL or for a core); done = the request → "
        "script_finished handed to the WebSocket (the event loop's part included), the rest of the latency is "
        "the browser's and the widget's. server CPU = all its threads "
        "over the phase (100 % = one core); busiest / 2nd = its two busiest threads.")
    say()

    def f(x, unit=""):
        return "–" if x != x else f"{x:.0f}{unit}"

    table(["phase", "n", "p50", "p95", "ratio", "done p50/p95", "run p50/p95", "script CPU p50", "waiting p50/p95",
           "server CPU", "busiest / 2nd thread", "load"],
          [[r["phase"] + (f" ({r['missed']} missed)" if r["missed"] else ""), r["n"], f(r["p50"]), f(r["p95"]),
            f"{r['p95'] / idle_p95:.2f}×", f"{f(r['done50'])} / {f(r['done95'])}", f"{f(r['run50'])} / {f(r['run95'])}", f(r["cpu50"]),
            f"{f(r['wait50'])} / {f(r['wait95'])}", f(r["server_cpu"], " %"),
            f"{f(r['top_thread'], ' %')} / {f(r['second_thread'], ' %')}", f"{r['load']:.1f}"] for r in results])
    notes = [f"{r['phase']}: {r['note']}" for r in results if r["note"]]
    for n in notes:
        say(f"- {n}")
    train, sep = results[1], results[2]
    say()
    ratio = train["p95"] / idle_p95
    verdict = "met" if ratio <= LATENCY_RATIO_TARGET else "NOT met"
    say(f"Target (p95 while training ≤ 2 × idle): {verdict}: {train['p95']:.0f} ms against {idle_p95:.0f} ms idle "
        f"({ratio:.2f}×); with the trainer in a separate process {sep['p95']:.0f} ms ({sep['p95'] / idle_p95:.2f}×).")
    if train["wait50"] == train["wait50"] and sep["wait50"] == sep["wait50"]:
        say(f"The script thread waited {train['wait50']:.0f} ms (p50) per rerun with the trainer in the server and "
            f"{sep['wait50']:.0f} ms with it in another process (idle {results[0]['wait50']:.0f} ms): the difference "
            "is the GIL's share, the rest the cores'.")
    print(f"(server logs in {log_dir})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and samples: a smoke run")
    parser.add_argument("--write", action="store_true", help=f"also write the report to {DOC.relative_to(ROOT)}")
    parser.add_argument("--skip-browser", action="store_true", help="the core numbers (1-3) only")
    parser.add_argument("--only-browser", action="store_true", help="the browser measurement (4) only")
    parser.add_argument("--samples", type=int, help="interactions per phase (default 30, 10 with --quick)")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    samples = args.samples or (10 if args.quick else 30)

    t0 = time.perf_counter()
    say("# LoRA on the real transformer: training time, memory, and the other sessions (`bench/bench_real.py`)")
    say()
    say(f"Command: `python bench/bench_real.py{''.join(' ' + a for a in sys.argv[1:])}`")
    say()
    machine()
    if not args.only_browser:
        from lora_app.compute.jobs import TRAIN_THREADS
        base = load_base_model()
        single_runs(base, repeats)
        grids(base, TRAIN_THREADS)
    if not args.skip_browser:
        browser_part(samples)
    say()
    say(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; total {time.perf_counter() - t0:.0f} s")
    if args.write:
        DOC.write_text("\n".join(LINES) + "\n", encoding="utf-8")
        print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
