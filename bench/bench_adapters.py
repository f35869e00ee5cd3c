"""Reading adapters people bring, measured: python bench/bench_adapters.py [--quick]

A Llama-2-7B-shaped PEFT adapter (32 layers; q, k, v, o, gate, up and down; bfloat16) at r = 16 (about 80 MB, the
issue's case) and at r = 64 (about 320 MB, the largest the 512 MB upload limit is sized for), each read as a folder
on the server and as an uploaded zip held in memory, by a fresh process (tests/reader_memory.py): the time to the
overview (every module's spectrum) and the peak memory above what the process held before, against the limit of
the file's size plus 256 MB. Targets: the r = 16 adapter's overview within 10 s; the memory within the limit.
A benchmark, not a test: it prints numbers for docs/PERFORMANCE.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from reader_memory import llama_shaped, measure, zipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="r = 16 only")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    print()
    print("| adapter | file | read as | overview | peak above before | limit (file + 256 MB) | within |")
    print("|---|---:|---|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for r in (16,) if args.quick else (16, 64):
            t0 = time.perf_counter()
            folder = llama_shaped(Path(tmp) / f"r{r}", r=r)
            made = time.perf_counter() - t0
            size = sum(p.stat().st_size for p in folder.iterdir())
            z = zipped(folder, Path(tmp) / f"r{r}.zip")
            for how, path in (("server folder", folder), ("upload (zip in memory)", z)):
                m = measure(path)
                assert m["error"] is None, m
                limit = size / 1e6 + 256
                print(f"| 7B shape, r = {r}, bf16, {m['modules']} modules | {size / 1e6:.1f} MB | {how} | "
                      f"{m['seconds']:.2f} s | {m['peak_mb']:.1f} MB | {limit:.0f} MB | "
                      f"{'yes' if m['peak_mb'] <= limit else 'NO'} |")
            print(f"<!-- r = {r}: made in {made:.1f} s; zip {z.stat().st_size / 1e6:.1f} MB -->")


if __name__ == "__main__":
    main()
