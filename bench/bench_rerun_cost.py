"""What one rerun costs the server, and where it goes (issue 13, part 2): python bench/bench_rerun_cost.py

    python bench/bench_rerun_cost.py [--each 40] [--students 3] [--pages explore attention training rank]
                                     [--profile] [--top 30] [--port 8910] [--out DIR]
                                     [--set runner.postScriptGC=false ...]

Starts ``streamlit run app.py`` on a port of 8900-8949 through a small launcher, opens a few
``bench/stclient.py`` students of one page (the link of ``bench/class_load.py``'s students) and
moves their controls back to back, no think time, one interaction at a time. Per page it prints:

- server CPU / interaction: psutil user + system of the whole server process (every thread) over the
  interactions, divided by their count;
- run / gc / send: inside the server, the script run's own thread CPU (``ScriptRunner._run_script``
  less the post-run ``gc.collect(2)``), that ``gc.collect(2)`` (``runner.postScriptGC``), and the
  event loop's ``serialize_forward_msg`` + websocket send of the run's messages, each per interaction;
- bytes and messages the client received per interaction, and the server's RSS before and after.

``--profile`` runs the same interactions under cProfile: one profiler per script run (the script
thread) and one on the event loop's thread (serialisation, sends, the session's message handling),
and prints the top functions by their own time and by cumulative time, per interaction. The
profiler slows everything down, so its per-interaction numbers are only for ranking; the CPU figures
come from a run without it. ``--set KEY=VALUE`` passes a Streamlit option (``--runner.postScriptGC
false``) to compare.

It patches private Streamlit 1.67 functions (as bench/bench_browser.py's ``--server-timing`` does).
Before timing, it checks that the heatmaps' FigureSpec path sends the same chart JSON as the go.Figure.

What it found (Explore, part 3, before the FigureSpec path and ``runner.postScriptGC = false``; cProfile
on thread CPU, so about 4× the real times, but in proportion): of a run, the three heatmaps took 55 %
(``st.plotly_chart``'s ``Figure.to_dict`` deep copy and typed-array conversion 24 %, building the
go.Figure 15 %, the builder's own arithmetic 5 %), Streamlit's ``gc.collect(2)`` 7 % (3 ms at first,
growing with the heap to 12 ms and more), the sidebar's widgets 11 %, ``st.cache_data`` key hashing
8 %, enqueueing the deltas 6 %, the LaTeX 4 %. Protobuf serialisation and the websocket sends are
on the event loop: 0.1 ms and about 1 ms per interaction.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import psutil
from class_load import make_student
from stclient import Session

# `python -c LAUNCHER run app.py ...` is `streamlit run app.py ...` with per-run timing (and cProfile).
LAUNCHER = r"""
import cProfile, gc, io, json, os, pstats, sys, threading, time, types
from streamlit.runtime.scriptrunner import script_runner as sr
from streamlit.web.server.starlette import starlette_websocket as ws
DIR = os.environ["BENCH_RERUN_DIR"]
PROFILE = os.environ.get("BENCH_RERUN_PROFILE") == "1"
lock = threading.Lock()
acc = {"runs": 0, "run_cpu": 0.0, "gc": 0.0, "send": 0.0, "sends": 0, "send_bytes": 0}
script_stats = {"s": None}
main_prof = cProfile.Profile(time.thread_time) if PROFILE else None
flag = {"loop": None}

def collect(*args):
    t0 = time.thread_time()
    try:
        return gc.collect(*args)
    finally:
        with lock:
            acc["gc"] += time.thread_time() - t0
sr.gc = types.SimpleNamespace(collect=collect)

original = sr.ScriptRunner._run_script
def run(self, rerun_data):
    g0 = acc["gc"]
    prof = cProfile.Profile(time.thread_time) if PROFILE else None
    c0 = time.thread_time()
    if prof:
        prof.enable()
    try:
        return original(self, rerun_data)
    finally:
        if prof:
            prof.disable()
        cpu = time.thread_time() - c0
        with lock:
            acc["runs"] += 1
            acc["run_cpu"] += cpu - (acc["gc"] - g0)
            if prof:
                if script_stats["s"] is None:
                    script_stats["s"] = pstats.Stats(prof)
                else:
                    script_stats["s"].add(prof)
sr.ScriptRunner._run_script = run

# the websocket's send of one ForwardMsg: serialisation, then the socket write (an async function)
serialize = ws.serialize_forward_msg
def timed_serialize(msg):
    t0 = time.thread_time()
    out = serialize(msg)
    acc["send"] += time.thread_time() - t0
    acc["sends"] += 1
    acc["send_bytes"] += len(out)
    if flag["loop"] is None:
        import asyncio
        flag["loop"] = asyncio.get_running_loop()
    return out
ws.serialize_forward_msg = timed_serialize

def dump(reset):
    global main_prof
    with lock:
        with open(os.path.join(DIR, "acc.json"), "w") as f:
            json.dump(acc, f)
        if PROFILE and reset:  # start both profiles afresh
            main_prof.disable()
            main_prof = cProfile.Profile(time.thread_time)
            script_stats["s"] = None
            main_prof.enable()
        elif PROFILE:
            main_prof.disable()
            if script_stats["s"] is not None:
                script_stats["s"].dump_stats(os.path.join(DIR, "script.prof"))
            pstats.Stats(main_prof).dump_stats(os.path.join(DIR, "main.prof"))
            main_prof.enable()
        open(os.path.join(DIR, "dumped"), "w").close()

def poll():  # the bench asks for a snapshot with a file; the event loop's thread writes it
    while True:
        time.sleep(0.05)
        if os.path.exists(os.path.join(DIR, "dump")) and flag["loop"] is not None:
            with open(os.path.join(DIR, "dump")) as f:
                reset = f.read() == "reset"
            os.remove(os.path.join(DIR, "dump"))
            flag["loop"].call_soon_threadsafe(dump, reset)
threading.Thread(target=poll, daemon=True).start()

sys.argv = ["streamlit", *sys.argv[1:]]
from streamlit.web.cli import main
if main_prof:
    main_prof.enable()
main()
"""


def start(port: int, workdir: Path, profile: bool, options: list[str]):
    cmd = [sys.executable, "-c", LAUNCHER, "run", "app.py", "--server.headless", "true", "--server.port", str(port),
           "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    for kv in options:
        k, v = kv.split("=", 1)
        cmd += [f"--{k}", v]
    env = {**os.environ, "LORA_DEVICE": "cpu", "BENCH_RERUN_DIR": str(workdir),
           "BENCH_RERUN_PROFILE": "1" if profile else "0"}
    log = open(workdir / "server.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"the server did not start; see {workdir / 'server.log'}")
        time.sleep(0.3)


async def snapshot(url: str, workdir: Path, reset: bool) -> dict:
    """Ask the launcher to write its counters (and profiles), on the server's event loop."""
    (workdir / "dumped").unlink(missing_ok=True)
    (workdir / "dump.tmp").write_text("reset" if reset else "dump")
    (workdir / "dump.tmp").rename(workdir / "dump")
    for _ in range(100):
        if (workdir / "dumped").exists():
            break
        await asyncio.sleep(0.1)
    return json.loads((workdir / "acc.json").read_text())


async def measure(url: str, proc: psutil.Process, workdir: Path, page: str, students: int, each: int, seed: int):
    group = [make_student(20_000 + i, seed, page) for i in range(students)]
    sessions = []
    for st in group:
        path, query = st.path_query()
        sessions.append(await Session.open(url, path, query, timeout=120))
    # one warm-up interaction each (not counted)
    for st, sess in zip(group, sessions):
        key, value = st.next_move()
        await sess.set_widget(key, value)
    a0 = await snapshot(url, workdir, reset=True)
    t = proc.cpu_times()
    c0 = t.user + t.system
    n, nbytes, nmsg, bad = 0, 0, 0, 0
    for _ in range(each):
        for st, sess in zip(group, sessions):
            key, value = st.next_move()
            res = await sess.set_widget(key, value)
            n += 1
            nbytes += res.bytes
            nmsg += res.messages
            bad += bool(res.exceptions) + bool(st.check(sess))
    t = proc.cpu_times()
    cpu = t.user + t.system - c0
    a1 = await snapshot(url, workdir, reset=False)
    for sess in sessions:
        await sess.close()
    d = {k: a1[k] - a0[k] for k in a0}
    runs = d["runs"]
    return {"page": page, "interactions": n, "server_cpu_ms": 1e3 * cpu / n, "runs": runs,
            "run_ms": 1e3 * d["run_cpu"] / n, "gc_ms": 1e3 * d["gc"] / n, "send_ms": 1e3 * d["send"] / n,
            "bytes": nbytes / n, "messages": nmsg / n, "server_bytes": d["send_bytes"] / n, "problems": bad}


def check_identical() -> int:
    """The heatmaps' chart JSON through the FigureSpec path equals the go.Figure's, byte for byte; returns the count."""
    import numpy as np
    import plotly.io as pio
    import plotly.tools as tools

    from lora_app.figures.heatmap import matrix_heatmap, matrix_heatmap_spec
    from lora_app.widgets.charts import Prebuilt

    rng, n = np.random.default_rng(0), 0
    cases = [{}, {"role": "frozen"}, {"role": "trainable", "zmax": 2.0}, {"show_scale": True, "text_size": 11},
             {"cell": (0, 0), "clickable": True, "show_scale": True}, {"rows": (0,)}, {"cols": (0,)},
             {"axis_titles": ("a", "b"), "labels": True}, {"scale": 2.0, "break_title": True, "decimals": 1}]
    for shape in [(5, 3), (1, 1), (8, 6), (30, 30), (64, 64), (200, 10)]:
        for kw in cases:
            if kw.pop("labels", False):
                kw = {**kw, "row_labels": [f"t{i}" for i in range(shape[0])], "col_labels": [f"c{i}" for i in range(shape[1])]}
            M = rng.normal(size=shape)
            M[0, 0] = np.nan if shape == (8, 6) else M[0, 0]
            for cell_px in (40, None):
                want = pio.to_json(tools.return_figure_from_figure_or_data(
                    matrix_heatmap(M, "Q = X·W_Q", cell_px=cell_px, **kw), True), validate=False)
                spec = matrix_heatmap_spec(M, "Q = X·W_Q", cell_px=cell_px, **kw)
                for _ in range(2):  # twice: the spec is not changed by being sent
                    got = pio.to_json(tools.return_figure_from_figure_or_data(Prebuilt.of(spec), True), validate=False)
                    if got != want:
                        raise AssertionError(f"FigureSpec JSON differs from the go.Figure's: {shape} {kw} {cell_px}")
                n += 1
    return n


def top(path: Path, n_inter: int, top_n: int, sort: str) -> list[str]:
    s = pstats.Stats(str(path))
    s.sort_stats(sort)
    rows = []
    for func in s.fcn_list[:top_n]:
        cc, nc, tt, ct, _ = s.stats[func]
        file, line, name = func
        where = f"{Path(file).name}:{line}({name})" if file != "~" else name
        rows.append(f"{1e3 * tt / n_inter:8.2f} {1e3 * ct / n_inter:8.2f} {nc / n_inter:8.1f}  {where}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", nargs="+", default=["explore", "attention", "training", "rank"])
    ap.add_argument("--students", type=int, default=3)
    ap.add_argument("--each", type=int, default=20, help="interactions per student")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--port", type=int, default=8910)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a Streamlit option")
    ap.add_argument("--out", type=Path, help="folder for the JSON and the profiles")
    args = ap.parse_args()
    if not 8900 <= args.port <= 8949:
        ap.error("--port must be in 8900-8949")
    if (ROOT / "lora_app" / "figures" / "heatmap.py").read_text().count("matrix_heatmap_spec"):
        print(f"FigureSpec JSON identical to the go.Figure's on {check_identical()} heatmap variants")
    workdir = args.out or Path(tempfile.mkdtemp(prefix="rerun_cost_"))
    workdir.mkdir(parents=True, exist_ok=True)
    server, url = start(args.port, workdir, args.profile, args.set)
    rows = []
    try:
        proc = psutil.Process(server.pid)
        for page in args.pages:
            if args.profile:
                for f in ("script.prof", "main.prof"):
                    (workdir / f).unlink(missing_ok=True)
            rss0 = proc.memory_info().rss / 2 ** 20
            row = asyncio.run(measure(url, proc, workdir, page, args.students, args.each, args.seed))
            row["rss_start_mib"], row["rss_mib"] = rss0, proc.memory_info().rss / 2 ** 20
            rows.append(row)
            if args.profile:
                for f in ("script.prof", "main.prof"):
                    if (workdir / f).exists():
                        (workdir / f).rename(workdir / f"{page}.{f}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    opts = " ".join(args.set) or "defaults"
    print(f"server options: {opts}; profile: {args.profile}; {args.students} students × {args.each} interactions per page")
    print("page       server CPU/inter  run    gc    send   runs/inter  KB recv  msgs  problems  RSS MiB (start → end)")
    for r in rows:
        print(f"{r['page']:<10} {r['server_cpu_ms']:10.1f} ms {r['run_ms']:7.1f} {r['gc_ms']:5.1f} {r['send_ms']:6.2f}"
              f" {r['runs'] / r['interactions']:8.2f} {r['bytes'] / 1e3:9.1f} {r['messages']:5.1f} {r['problems']:6d}"
              f" {r['rss_start_mib']:6.0f} → {r['rss_mib']:.0f}")
    (workdir / "rerun_cost.json").write_text(json.dumps({"options": args.set, "profile": args.profile, "rows": rows},
                                                        indent=1))
    if args.profile:
        lines = []
        for r in rows:
            for f, title in (("script.prof", "script thread"), ("main.prof", "event loop thread")):
                p = workdir / f"{r['page']}.{f}"
                if not p.exists():
                    continue
                for sort in ("tottime", "cumulative"):
                    lines.append(f"\n== {r['page']}: {title}, by {sort} (ms per interaction: own, cumulative; calls)")
                    lines += top(p, r["interactions"], args.top, sort)
        (workdir / "profile_top.txt").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
    print(f"\nwritten: {workdir}/rerun_cost.json" + (f", {workdir}/profile_top.txt" if args.profile else ""))


if __name__ == "__main__":
    main()
