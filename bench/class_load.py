"""A class on one server, spoken over Streamlit's own protocol (issue 13): python bench/class_load.py

    python bench/class_load.py --sessions 25 50 100 200 --duration 120 [--think 2 10] [--seed 13]

Starts ``streamlit run app.py`` pinned to core 0 and runs every simulated student from this one
process (one asyncio event loop, ``bench/stclient.py``) pinned to core 1. Each student opens a page
with a link of its own (its own seed, sizes and adapters), then changes one control after another
at a think time drawn uniformly from ``--think`` (seeded), or, with ``--cue``, all at once at a
lecturer's cue (each within 0.3 s of it), and checks after every run that its own
numbers came back: the heatmap's numbers equal what this script computes through ``lora_core`` for
that student's own settings, and the link the server wrote carries its own seed. A run that shows
anything else counts as bleed (or a mismatch); an exception element, a refused message, a closed
socket or a timeout count as errors.

The mix: Explore 60 % (the n, r, α sliders, the seed, the parts), Attention 15 % (the adapters'
checkboxes), Training 15 % (the step slider), Rank 10 % (r and α: ΔW's heatmap).

Before the levels, a per-page phase runs a few students of one page back to back (no think time)
and divides the server's CPU seconds (psutil, all its threads) by the interactions: the server CPU
per interaction by page. During each level the server's CPU and RSS are sampled every second.
Writes docs/bench_class_load.md's table to stdout and, with ``--out``, a JSON and an SVG plot of
latency against sessions with the knee marked (the first level whose p95 exceeds twice the lowest
level's p95, or 1 s).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import numpy as np
import psutil
from stclient import Session, SessionError

SERVER_CORE, CLIENT_CORE = 0, 1


# --- what each student computes for itself -------------------------------------------------------

def _z(spec: dict) -> np.ndarray:
    from helpers import heatmap_z
    return heatmap_z(spec)


def _same(spec: dict | None, expected: np.ndarray) -> bool:
    if spec is None:
        return False
    got = _z(spec)
    return got.shape == expected.shape and np.allclose(got, expected, rtol=1e-9, atol=1e-12)


@dataclass
class Student:
    """One simulated student: a page, a link of its own, and the state it believes it is in."""
    idx: int
    page: str
    rng: random.Random
    state: dict
    latencies: list[float] = field(default_factory=list)
    first_load: float | None = None
    errors: list[str] = field(default_factory=list)
    bleed: int = 0
    checks: int = 0
    messages: int = 0
    bytes: int = 0

    # the link and the oracle per page -----------------------------------------------------------

    def path_query(self) -> tuple[str, str]:
        s = self.state
        if self.page == "explore":
            q = {k: s[k] for k in ("preset", "seed", "n", "d", "k", "r", "alpha")} | {"view": "q"}
            return "/", urllib.parse.urlencode(q)
        if self.page == "attention":
            q = {k: s[k] for k in ("preset", "seed", "n", "d", "k")} | {"lora": ",".join(sorted(s["lora"])) or "none"}
            return "/attention", urllib.parse.urlencode(q)
        if self.page == "training":
            q = {"seed": s["seed"], "lr": f"{s['lr']:g}", "step": s["step"], "stage": "forward"}
            return "/training", urllib.parse.urlencode(q)
        q = {k: s[k] for k in ("preset", "seed", "n", "d", "k", "r", "alpha")}
        return "/rank", urllib.parse.urlencode(q)

    def check(self, sess: Session) -> str | None:
        """None when the session shows exactly this student's numbers; else what is wrong."""
        from lora_core import build_example, lora_forward, lora_scaling
        s = self.state
        params = urllib.parse.parse_qs(sess.query_string)
        if params.get("seed") != [str(s["seed"])]:
            return f"link has seed {params.get('seed')}, expected {s['seed']}"
        figs = sess.figures()
        if self.page in ("explore", "rank"):
            ex = build_example(s["preset"], s["seed"], s["n"], s["d"], s["k"], s["r"])
            scale = lora_scaling(s["alpha"], s["r"])
            if self.page == "explore":
                title = f"Q = X·(W_Q + ΔW_Q) ({s['n']}×{s['k']})"
                want = lora_forward(ex.X, ex.W, ex.A, ex.B, scaling=scale).q.numpy()
            else:
                title = f"ΔW = s·A·B ({s['d']}×{s['k']})"
                want = (scale * ex.A @ ex.B).numpy()
            return None if _same(figs.get(title), want) else f"{title}: not this student's numbers (have {list(figs)[:4]})"
        if self.page == "attention":
            res = self._attention()
            title = ("K_1 = X·(W_K + s·A_K·B_K)" if "k" in s["lora"] else "K_1 = X·W_K") + f" ({s['n']}×{s['k']})"
            return None if _same(figs.get(title), res.k.numpy()) else f"{title}: not this student's numbers (have {list(figs)[:4]})"
        q = self._trace()[s["step"] - 1].q.numpy()
        return None if _same(figs.get("Q (3×3)"), q) else f"Q (3×3) at step {s['step']}: not this student's numbers"

    def _attention(self):
        from lora_core import build_example, lora_scaling
        from lora_core.attention import PROJECTIONS, attention_forward, make_attention_weights
        s = self.state
        ex = build_example(s["preset"], s["seed"], s["n"], s["d"], s["k"], 2)
        weights = make_attention_weights(s["d"], s["seed"], r=2, heads=1, d_head=s["k"], preset=s["preset"])
        W = [w.clone() for w in weights[:4]]
        pairs = {p: (A.clone(), B.clone()) for p, (A, B) in weights.lora.items()}
        W[0][:, :s["k"]], pairs["q"][0][:], pairs["q"][1][:, :s["k"]] = ex.W, ex.A, ex.B
        return attention_forward(ex.X, *W, heads=1, lora={p: pairs[p] for p in PROJECTIONS if p in s["lora"]},
                                 scaling=lora_scaling(2.0, 2))

    def _trace(self):
        if "_trace" not in self.state:
            from lora_core import adamw_trace, build_example, make_target
            ex = build_example("seed", self.state["seed"], 3, 5, 3, 2)
            T = make_target(ex.X, ex.W, r_star=1, seed=self.state["seed"]).T
            self.state["_trace"] = adamw_trace(*ex, T, scaling=1.0, steps=300, lr=self.state["lr"],
                                               betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
        return self.state["_trace"]

    # one interaction: choose a control, move it, and say what the student now expects ----------------

    def next_move(self) -> tuple[str, object]:
        s, rng = self.state, self.rng
        if self.page in ("explore", "rank"):
            what = rng.choice(["n", "r", "alpha", "seed"] if self.page == "explore" else ["r", "alpha"])
            if what == "n":
                s["n"] = rng.choice([v for v in range(1, 9) if v != s["n"]])
                return "n", s["n"]
            if what == "r":
                s["r"] = rng.choice([v for v in range(1, min(s["d"], s["k"]) + 1) if v != s["r"]])
                return "r", s["r"]
            if what == "alpha":
                s["alpha"] = rng.choice([v / 2 for v in range(1, 17) if v / 2 != s["alpha"]])
                return "alpha", s["alpha"]
            s["seed"] = rng.randrange(10 ** 6)
            return "seed", s["seed"]
        if self.page == "attention":
            target = rng.choice(["k", "v", "o"])
            s["lora"] = s["lora"] ^ {target}
            return f"lora_{target}", target in s["lora"]
        s["step"] = rng.choice([v for v in range(1, 61) if v != s["step"]])
        return "step", s["step"]


MIX = (("explore", 60), ("attention", 15), ("training", 15), ("rank", 10))


def make_student(idx: int, seed: int, page: str | None = None) -> Student:
    rng = random.Random(seed * 100_003 + idx)
    if page is None:
        page = rng.choices([p for p, _ in MIX], [w for _, w in MIX])[0]
    own_seed = 1000 + idx  # every student's link carries its own seed: another's numbers cannot pass
    if page in ("explore", "rank"):
        d, k = rng.randint(2, 6), rng.randint(2, 5)
        state = {"preset": rng.choice(["seed", "random"]), "seed": own_seed, "n": rng.randint(2, 6), "d": d, "k": k,
                 "r": rng.randint(1, min(d, k)), "alpha": rng.choice([1.0, 1.5, 2.0, 3.0, 4.0])}
    elif page == "attention":
        state = {"preset": rng.choice(["seed", "random"]), "seed": own_seed, "n": 4, "d": 6, "k": 3,
                 "lora": set(rng.choice([("q",), ("q", "v"), ("v", "o"), (), ("q", "k", "v", "o")]))}
    else:
        state = {"seed": own_seed, "lr": round(rng.choice([0.01, 0.02, 0.05, 0.1]), 3), "step": rng.randint(1, 60)}
    return Student(idx, page, rng, state)


# --- running students ----------------------------------------------------------------------------

async def run_student(st: Student, url: str, until: float, think: tuple[float, float], start_delay: float,
                      interactions: int | None = None, cue: tuple[float, float] | None = None) -> None:
    await asyncio.sleep(start_delay)
    path, query = st.path_query()
    try:
        sess = await Session.open(url, path, query, timeout=120)
    except SessionError as exc:
        st.errors.append(f"open: {exc}")
        return
    st.first_load = sess.first_load_s
    try:
        for r in sess.first_load:
            st.errors += [f"exception: {e}" for e in r.exceptions]
        problem = st.check(sess)
        st.checks += 1
        if problem:
            st.bleed += 1
            st.errors.append(f"first load: {problem}")
        done = 0
        while time.monotonic() < until and (interactions is None or done < interactions):
            if cue is not None:  # (t0, period): act at the lecturer's next cue, after a reaction time
                t0, period = cue
                tick = t0 + period * (1 + (time.monotonic() - t0) // period)
                await asyncio.sleep(tick - time.monotonic() + st.rng.uniform(0, CUE_REACTION_S))
            else:
                await asyncio.sleep(st.rng.uniform(*think) if think[1] > 0 else 0)
            if time.monotonic() >= until:
                break
            key, value = st.next_move()
            try:
                res = await sess.set_widget(key, value)
            except SessionError as exc:
                st.errors.append(f"{key}={value}: {exc}")
                break
            done += 1
            st.latencies.append(res.latency_s)
            st.messages += res.messages
            st.bytes += res.bytes
            st.errors += [f"exception: {e}" for e in res.exceptions]
            refused = [b for f, b in sess.alerts() if "cannot read" in b]
            st.errors += [f"refused: {b[:120]}" for b in refused]
            problem = st.check(sess)
            st.checks += 1
            if problem:
                st.bleed += 1
                st.errors.append(f"{key}={value}: {problem}")
        st.errors += [f"protocol: {e}" for e in sess.errors]
    finally:
        await sess.close()


class Sampler:
    """The server's CPU seconds (all threads) and RSS, every ``interval`` seconds, on the event loop."""

    def __init__(self, proc: psutil.Process, interval: float = 1.0):
        self.proc, self.interval, self.samples = proc, interval, []
        self._task = None

    def cpu(self) -> float:
        t = self.proc.cpu_times()
        return t.user + t.system

    async def _run(self):
        t0 = time.monotonic()
        while True:
            self.samples.append((time.monotonic() - t0, self.cpu(), self.proc.memory_info().rss))
            await asyncio.sleep(self.interval)

    def start(self):
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self):
        self.samples.append((self.samples[-1][0] + self.interval if self.samples else 0, self.cpu(),
                             self.proc.memory_info().rss))
        self._task.cancel()


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


CUE_REACTION_S = 0.3  # with --cue, each student acts within this long of the cue


async def level(url: str, proc: psutil.Process, n: int, duration: float, think: tuple[float, float],
                seed: int, cue: float | None = None) -> dict:
    students = [make_student(i, seed) for i in range(n)]
    sampler = Sampler(proc)
    me = psutil.Process()
    c0 = me.cpu_times()
    sampler.start()
    t0 = time.monotonic()
    # arrivals spread over the first think time, as a class opening the link does
    await asyncio.gather(*(run_student(s, url, t0 + duration, think, random.Random(seed + i).uniform(0, think[1]),
                                       cue=(t0 + think[1], cue) if cue else None)
                           for i, s in enumerate(students)))
    wall = time.monotonic() - t0
    await sampler.stop()
    c1 = me.cpu_times()
    lat = [x for s in students for x in s.latencies]
    cpu = sampler.samples[-1][1] - sampler.samples[0][1]
    rss = [r for _, _, r in sampler.samples]
    by_page = {}
    for page, _ in MIX:
        ls = [x for s in students if s.page == page for x in s.latencies]
        by_page[page] = {"students": sum(s.page == page for s in students), "interactions": len(ls),
                         "p50": pct(ls, 50), "p95": pct(ls, 95)}
    return {
        "sessions": n, "wall_s": wall, "interactions": len(lat), "per_s": len(lat) / wall,
        "p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99), "max": max(lat) if lat else float("nan"),
        "first_load_p50": pct([s.first_load for s in students if s.first_load], 50),
        "first_load_p95": pct([s.first_load for s in students if s.first_load], 95),
        "server_cpu_s": cpu, "server_cpu_per_interaction_ms": 1000 * cpu / max(len(lat), 1),
        # a student's opening is two runs (the page, then the screen report): the CPU per run counts them
        "runs": len(lat) + 2 * sum(s.first_load is not None for s in students),
        "server_cpu_per_run_ms": 1000 * cpu / max(len(lat) + 2 * sum(s.first_load is not None for s in students), 1),
        "server_cpu_util": cpu / wall,
        "client_cpu_util": (c1.user + c1.system - c0.user - c0.system) / wall,
        "rss_mib": {"start": rss[0] / 2 ** 20, "end": rss[-1] / 2 ** 20, "peak": max(rss) / 2 ** 20},
        "rss_series": [(round(t, 1), round(r / 2 ** 20, 1)) for t, _, r in sampler.samples[::5]],
        # the server core's busy share over each 30 s: a cost per run that grew with time would show here
        "cpu_busy_series": [(round(t1, 1), round((c1 - c0) / (t1 - t0), 3)) for (t0, c0, _), (t1, c1, _)
                            in zip(sampler.samples[::30], sampler.samples[30::30])],
        "errors": sum(len(s.errors) for s in students), "error_examples": [e for s in students for e in s.errors][:8],
        "bleed": sum(s.bleed for s in students), "checks": sum(s.checks for s in students),
        "bytes_per_interaction": sum(s.bytes for s in students) / max(len(lat), 1),
        "messages_per_interaction": sum(s.messages for s in students) / max(len(lat), 1),
        "by_page": by_page,
    }


async def per_page_cost(url: str, proc: psutil.Process, seed: int, students: int = 3, each: int = 15) -> dict:
    """Server CPU per interaction by page: a few students of one page, back to back, no think time."""
    out = {}
    for page, _ in MIX:
        group = [make_student(10_000 + i, seed, page) for i in range(students)]
        # open first (not counted), then time only the interactions
        sessions = []
        for st in group:
            path, query = st.path_query()
            sessions.append(await Session.open(url, path, query, timeout=120))
        sampler = Sampler(proc)
        c0 = sampler.cpu()
        t0 = time.monotonic()
        lat, bleed, errs = [], 0, []

        async def drive(st: Student, sess: Session):
            nonlocal bleed
            for _ in range(each):
                key, value = st.next_move()
                res = await sess.set_widget(key, value)
                lat.append(res.latency_s)
                errs.extend(res.exceptions)
                if st.check(sess):
                    bleed += 1
        await asyncio.gather(*(drive(st, s) for st, s in zip(group, sessions)))
        cpu, wall = sampler.cpu() - c0, time.monotonic() - t0
        for s in sessions:
            await s.close()
        out[page] = {"interactions": len(lat), "server_cpu_ms": 1000 * cpu / len(lat), "p50_alone": pct(lat, 50),
                     "wall_s": wall, "bleed": bleed, "errors": len(errs)}
    return out


# --- the server, the pinning, the report -----------------------------------------------------------

def start_server(log: Path):
    """``streamlit run app.py`` on core 0 (this process sets its affinity to 0 for the fork, then to 1)."""
    from helpers import start_streamlit
    os.sched_setaffinity(0, {SERVER_CORE})
    try:
        proc, url = start_streamlit("app.py", log, timeout_s=120)
    finally:
        os.sched_setaffinity(0, {CLIENT_CORE})
    return proc, url


def knee(rows: list[dict]) -> dict | None:
    base = min(r["p95"] for r in rows)
    for r in sorted(rows, key=lambda r: r["sessions"]):
        if r["p95"] > max(2 * base, 1.0) or r["errors"]:
            return r
    return None


def svg_plot(rows: list[dict], path: Path) -> None:
    """Latency percentiles against sessions, log-scaled latency, the knee marked. Hand-written SVG."""
    W, H, L, R, T, B = 640, 400, 70, 20, 30, 50
    xs = [r["sessions"] for r in rows]
    ys = [v for r in rows for v in (r["p50"], r["p95"], r["p99"]) if v == v and v > 0]
    lo, hi = np.log10(min(ys) / 1.5), np.log10(max(ys) * 1.5)
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1

    def px(x):
        return L + (x - x0) / (x1 - x0) * (W - L - R)

    def py(y):
        return T + (hi - np.log10(y)) / (hi - lo) * (H - T - B)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14">Latency send → run finished, against active sessions</text>',
             f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
             f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>',
             f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle">sessions (think time {rows[0]["think"]})</text>']
    for e in range(int(np.floor(lo)), int(np.ceil(hi)) + 1):
        for m in (1, 2, 5):
            y = m * 10.0 ** e
            if lo <= np.log10(y) <= hi:
                parts.append(f'<line x1="{L - 4}" y1="{py(y):.1f}" x2="{W - R}" y2="{py(y):.1f}" stroke="#ddd"/>')
                parts.append(f'<text x="{L - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g} s</text>')
    for x in xs:
        parts.append(f'<text x="{px(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x}</text>')
    label_y = None  # each label above its line's end, and at least a line of text above the one below it
    for name, colour in (("p50", "#1f77b4"), ("p95", "#d62728"), ("p99", "#9467bd")):
        pts = " ".join(f"{px(r['sessions']):.1f},{py(r[name]):.1f}" for r in rows if r[name] == r[name] and r[name] > 0)
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        last = rows[-1]
        y = py(last[name]) - 6 if last[name] == last[name] and last[name] > 0 else T + 12
        label_y = y if label_y is None else min(y, label_y - 14)
        parts.append(f'<text x="{px(last["sessions"]) - 4:.1f}" y="{label_y:.1f}" text-anchor="end" fill="{colour}">{name}</text>')
    k = knee(rows)
    if k:
        parts.append(f'<line x1="{px(k["sessions"]):.1f}" y1="{T}" x2="{px(k["sessions"]):.1f}" y2="{H - B}" stroke="#ff7f0e" stroke-dasharray="5,4"/>')
        # right-aligned left of the line, so the label stays inside the plot at the last level too
        parts.append(f'<text x="{px(k["sessions"]) - 4:.1f}" y="{T - 4}" fill="#b45309" text-anchor="end">'
                     f'knee: {k["sessions"]} sessions</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts))


def table(rows: list[dict]) -> list[str]:
    out = ["| sessions | interactions | per s | p50 | p95 | p99 | max | first load p50 / p95 | server CPU / interaction (per run) | server core busy | client core busy | RSS start → end (peak) | errors | bleed / checks |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        m = r["rss_mib"]
        out.append(f"| {r['sessions']} | {r['interactions']} | {r['per_s']:.2f} | {r['p50'] * 1000:.0f} ms | "
                   f"{r['p95'] * 1000:.0f} ms | {r['p99'] * 1000:.0f} ms | {r['max'] * 1000:.0f} ms | "
                   f"{r['first_load_p50']:.2f} / {r['first_load_p95']:.2f} s | {r['server_cpu_per_interaction_ms']:.0f} ({r['server_cpu_per_run_ms']:.0f}) ms | "
                   f"{r['server_cpu_util']:.0%} | {r['client_cpu_util']:.0%} | {m['start']:.0f} → {m['end']:.0f} ({m['peak']:.0f}) MiB | "
                   f"{r['errors']} | {r['bleed']} / {r['checks']} |")
    return out


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    import streamlit
    return (f"{platform.machine()}, {os.cpu_count()} cores ({cpu}), {psutil.virtual_memory().total / 2 ** 30:.0f} GiB; "
            f"Python {platform.python_version()}, Streamlit {streamlit.__version__}; server pinned to core "
            f"{SERVER_CORE}, load client to core {CLIENT_CORE}; load average before: "
            f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, nargs="+", default=[25, 50, 100, 200])
    ap.add_argument("--duration", type=float, default=120, help="seconds per level")
    ap.add_argument("--think", type=float, nargs=2, default=(2.0, 10.0), metavar=("MIN", "MAX"),
                    help="think time between interactions, uniform (give 5 5 for a fixed 5 s)")
    ap.add_argument("--cue", type=float, metavar="SECONDS",
                    help="instead of thinking, every student acts at once every SECONDS (within 0.3 s): a lecturer's cue")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--no-per-page", action="store_true", help="skip the per-page CPU phase")
    ap.add_argument("--out", type=Path, help="folder for class_load.json and class_load.svg")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(1)
    import tempfile
    log = Path(tempfile.gettempdir()) / "class-load-server.log"
    proc, url = start_server(log)
    server = psutil.Process(proc.pid)
    print(machine(), flush=True)
    print(f"server pid {proc.pid} affinity {sorted(server.cpu_affinity())}; client affinity {sorted(os.sched_getaffinity(0))}",
          flush=True)
    rows, per_page = [], None
    try:
        # the first session of a server leaves Streamlit's pages/-folder mode (navigation.entry_guard) and warms its imports
        async def warm():
            s = await Session.open(url, "/", "", timeout=120)
            await s.close()
        asyncio.run(warm())
        if not args.no_per_page:
            per_page = asyncio.run(per_page_cost(url, server, args.seed))
            print("server CPU per interaction by page (3 students back to back, 15 interactions each):")
            for page, v in per_page.items():
                print(f"  {page:10s} {v['server_cpu_ms']:6.1f} ms   alone p50 {v['p50_alone'] * 1000:.0f} ms   "
                      f"bleed {v['bleed']} errors {v['errors']}", flush=True)
        for n in args.sessions:
            r = asyncio.run(level(url, server, n, args.duration, tuple(args.think), args.seed, args.cue))
            r["think"] = f"cue every {args.cue:g} s" if args.cue else f"{args.think[0]:g}–{args.think[1]:g} s"
            rows.append(r)
            print("\n".join(table([r])[2:]), flush=True)
            print("  by page p50/p95:", {p: f"{v['p50'] * 1000:.0f}/{v['p95'] * 1000:.0f} ms ({v['interactions']})"
                                        for p, v in r["by_page"].items()},
                  f" bytes/interaction {r['bytes_per_interaction']:.0f}", flush=True)
            if r["error_examples"]:
                print("  errors:", r["error_examples"][:4], flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    print()
    print("\n".join(table(rows)))
    k = knee(rows)
    print(f"knee: {k['sessions'] if k else 'none'} (first level with p95 > max(2 × lowest p95, 1 s), or errors)")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "class_load.json").write_text(json.dumps({"machine": machine(), "levels": rows, "per_page": per_page,
                                                              "think": args.think}, indent=1, default=str))
        if rows:
            svg_plot(rows, args.out / "class_load.svg")
        print(f"wrote {args.out / 'class_load.json'} and class_load.svg")


if __name__ == "__main__":
    main()
