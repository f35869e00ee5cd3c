"""Prepare the Real model page's experiments before class, into a runs folder every server can read.

    LORA_RUNS_DIR=/srv/lora-runs python scripts/prepare_runs.py            # the page's default settings
    LORA_RUNS_DIR=/srv/lora-runs python scripts/prepare_runs.py --steps 500 --seed 1

Start the app with the same ``LORA_RUNS_DIR`` and the Fine-tune run, the placement grid (both tasks),
the rank sweep and the family show at once. Each file is checked again when a server reads it (lora_core.runs):
a file for another base model, other settings or weights that do not reach the accuracy it records
is refused, and the page trains that run itself instead. Runs already in the folder are skipped.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lora_app.compute import jobs
from lora_app.compute.real import family_settings, full_settings, grid_settings, sweep_settings
from lora_app.config.real import DEFAULT_LORA, DEFAULTS, LORA_KEYS, real_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=DEFAULTS["real_steps"])
    ap.add_argument("--seed", type=int, default=DEFAULTS["real_seed"])
    ap.add_argument("--lr", type=float, default=DEFAULTS["real_lr"])
    ap.add_argument("--alpha", type=float, default=DEFAULTS["real_alpha"])
    ap.add_argument("--sweep", default=DEFAULTS["real_sweep"], help="the rank sweep's placement, e.g. q+v")
    args = ap.parse_args()
    if jobs.runs_dir() is None:
        sys.exit(f"set {jobs.RUNS_ENV} to the folder the servers will read, e.g. {jobs.RUNS_ENV}=/srv/lora-runs")
    values = {**DEFAULTS, **{LORA_KEYS[t]: t in DEFAULT_LORA for t in LORA_KEYS}, "real_steps": args.steps,
              "real_seed": args.seed, "real_lr": args.lr, "real_alpha": args.alpha, "real_sweep": args.sweep}
    cfg, problems = real_config(values, None)
    if problems:
        sys.exit("\n".join(problems))
    wanted = []
    for s in (cfg.settings, full_settings(cfg.settings), *(replace(cfg.settings, task=t) for t in ("permute",)),
              full_settings(replace(cfg.settings, task="permute")), *grid_settings(cfg), *sweep_settings(cfg),
              *family_settings(cfg)):
        if s not in wanted:
            wanted.append(s)
    todo = [s for s in wanted if jobs.STORE.get(s) is None]
    print(f"{len(wanted)} runs, {len(wanted) - len(todo)} already in {jobs.runs_dir()}; training {len(todo)}",
          flush=True)
    start = time.perf_counter()
    if todo:
        job = jobs.submit(tuple(todo), "prepare_runs")
        while not job.wait(5):
            snap = job.snapshot()
            print(f"  {snap.done} of {snap.total} done, {time.perf_counter() - start:.0f} s", flush=True)
        snap = job.snapshot()
        if snap.state != "done":
            sys.exit(f"stopped: {snap.state} {snap.error}")
    refused = dict(jobs.STORE.refused)
    print(f"done in {time.perf_counter() - start:.1f} s; {len(list(jobs.runs_dir().glob('*.safetensors')))} run files"
          + (f"; {len(refused)} files were refused and trained again" if refused else ""))


if __name__ == "__main__":
    main()
