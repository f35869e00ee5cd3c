"""Server-side script time per page, warm, through AppTest: python bench/bench_pages.py

Each interaction is timed over repeats after one warm-up; the numbers are the whole script run
(app.py + the page), which is what a slider move costs on the server before the browser draws.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("LORA_DEVICE", "cpu")

from streamlit.testing.v1 import AppTest

from helpers import keep_navigation_mode

REPEATS = 15


def timed(action, repeats=REPEATS) -> tuple[float, float]:
    action()  # warm: caches filled, modules imported
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        action()
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times) * 1e3, times[int(0.95 * (len(times) - 1))] * 1e3


def page_rows(at, label: str, repeats: int) -> list:
    """A warm rerun of every page at the current sidebar settings."""
    rows = []
    for page in ("explore", "training", "attention", "rank", "scale", "present"):
        at.switch_page(f"pages/{page}.py").run()
        if page == "present":
            at.session_state["slide"] = 4
        rows.append((page, f"rerun, {label}", timed(lambda: at.run(), repeats)))
    return rows


def main() -> None:
    keep_navigation_mode()
    at = AppTest.from_file(str(ROOT / os.environ.get("LORA_TEST_ENTRY", "app.py")), default_timeout=120).run()
    r_values = iter([1, 2] * 100)
    rows = [("explore", "move r (1 ↔ 2)", timed(lambda: at.slider(key="r").set_value(next(r_values)).run()))]
    rows += page_rows(at, "seed size", REPEATS)
    at.switch_page("pages/training.py").run()
    steps = iter(list(range(2, 300)))
    rows.append(("training", "scrub the step slider", timed(lambda: at.slider(key="step").set_value(next(steps)).run())))
    stages = iter(["loss", "backward", "adamw", "update", "forward"] * 10)
    rows.append(("training", "change stage", timed(lambda: at.radio(key="stage").set_value(next(stages)).run())))
    lrs = iter([0.01 + 0.001 * i for i in range(100)])
    rows.append(("training", "new lr: 300-step trace + full FT", timed(lambda: at.number_input(key="lr").set_value(next(lrs)).run(), 5)))
    at.switch_page("pages/explore.py").run()
    at.select_slider(key="d").set_value(1024).run()
    at.select_slider(key="k").set_value(1024).run()
    at.slider(key="n").set_value(64).run()
    r_big = iter([1, 2] * 100)
    rows.append(("explore", "move r, d = k = 1024, n = 64", timed(lambda: at.slider(key="r").set_value(next(r_big)).run(), 5)))
    rows += page_rows(at, "d = k = 1024, n = 64", 5)
    print(f"AppTest script time, warm, median and p95 over repeats (LORA_DEVICE={os.environ['LORA_DEVICE']})")
    print(f"{'page':<10}| {'interaction':<36}| {'median':>9} | {'p95':>9}")
    print("-" * 72)
    for page, what, (med, p95) in rows:
        print(f"{page:<10}| {what:<36}| {med:7.1f} ms | {p95:7.1f} ms")


if __name__ == "__main__":
    main()
