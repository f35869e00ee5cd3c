"""What laying out a figure row costs on the server: python bench/bench_layout.py

``row_layout`` searches every way to wrap a row and every cell size (binary search), and each
heatmap then fits its numbers; this prints the median of 50 runs for the rows the app draws.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lora_app import figures
from lora_core import seed_example


def median_ms(action, repeats=50) -> float:
    action()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        action()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    X, W, A, B = [t.numpy() for t in seed_example()]
    rng = np.random.default_rng(0)
    rows = {
        "Explore's matrices (X, W_Q, A_Q, B_Q)": [(X, "X", {}), (W, "W_Q", {"role": "frozen"}), (A, "A_Q", {}), (B, "B_Q", {})],
        "slide 8's six (A and B before, Δ, after)": [(A, "A_Q before", {}), (A, "ΔA_Q", {}), (A, "A_Q after", {}),
                                                     (B, "B_Q before", {}), (B, "ΔB_Q", {}), (B, "B_Q after", {})],
        "three 32×32 (numbers at their limit)": [(rng.normal(size=(32, 32)), f"M{i}", {}) for i in range(3)],
        "three 1024×1024 (block means)": [(rng.normal(size=(1024, 1024)), f"W{i}", {}) for i in range(3)],
    }
    print(f"{'row':44} {'layout ms':>10} {'+ figures ms':>13}")
    for name, items in rows.items():
        for width, height, scale in ((1224, None, 1.0), (960, 560, 1.06)):
            layout = median_ms(lambda: figures.row_layout(items, width, height, scale))
            cell = figures.row_layout(items, width, height, scale).cell
            build = median_ms(lambda: [figures.matrix_heatmap(M, t, cell_px=cell, scale=scale, **kw) for M, t, kw in items],
                              repeats=10 if "1024" in name else 50)
            where = "page 1224 px" if height is None else "slide 960×560"
            print(f"{name[:30] + ', ' + where:44} {layout:10.2f} {build:13.2f}")


if __name__ == "__main__":
    main()
