"""Pre-train the Real model page's base transformer to sort 8 digits, and write it to lora_core/assets.

Deterministic: seed 0, CPU, float32, one thread. Run from the repository root:

    python scripts/pretrain_tiny.py            # writes tiny_sort.safetensors and tiny_sort.json
    python scripts/pretrain_tiny.py --check    # trains again and checks the bytes equal the shipped file

It prints its time; on the 2-core development machine it takes about a minute.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lora_core.tiny import (
    BASE_CONFIG,
    BASE_WEIGHTS,
    TinyConfig,
    TinyTransformer,
    held_out_set,
    task_targets,
    token_accuracy,
    train_batch,
)

SEED, STEPS, BATCH, LR, WARMUP = 0, 4000, 128, 3e-3, 200


def pretrain(steps: int = STEPS, log_every: int = 500) -> tuple[TinyTransformer, dict]:
    torch.set_num_threads(1)
    torch.manual_seed(SEED)  # the initial weights
    cfg = TinyConfig()
    model = TinyTransformer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01, foreach=False)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: min(1.0, (t + 1) / WARMUP) * max(0.05, 1 - t / steps))
    g = torch.Generator().manual_seed(SEED + 1)
    held = held_out_set(cfg)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        x = train_batch(cfg, g, BATCH)
        loss = F.cross_entropy(model(x).flatten(0, 1), task_targets(cfg.base_task, x).flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % log_every == 0:
            print(f"step {step:5d}  loss {loss.item():.4f}  held-out token accuracy "
                  f"{token_accuracy(model, held, cfg.base_task):.4f}", flush=True)
    seconds = time.perf_counter() - start
    acc = token_accuracy(model, held, cfg.base_task)
    record = {"seed": SEED, "steps": steps, "batch": BATCH, "lr": LR, "warmup": WARMUP, "schedule": "linear decay",
              "optimizer": "torch.optim.AdamW(weight_decay=0.01)", "seconds": round(seconds, 1),
              "machine": f"{platform.machine()}, 1 thread, torch {torch.__version__}",
              "held_out_token_accuracy": acc, "held_out_sequences": int(held.shape[0])}
    return model, record


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="train again and compare with the shipped weights")
    ap.add_argument("--steps", type=int, default=STEPS)
    args = ap.parse_args()
    model, record = pretrain(args.steps)
    blob = save({k: v.contiguous() for k, v in model.state_dict().items()}, metadata={"format": "pt"})
    print(f"held-out token accuracy {record['held_out_token_accuracy']:.4f}, {record['seconds']} s")
    if args.check:
        same = BASE_WEIGHTS.read_bytes() == blob
        print("identical to the shipped weights" if same else "DIFFERENT from the shipped weights")
        sys.exit(0 if same else 1)
    BASE_WEIGHTS.write_bytes(blob)
    BASE_CONFIG.write_text(json.dumps({"architecture": asdict(model.cfg), "pretraining": record}, indent=2) + "\n")
    print(f"wrote {BASE_WEIGHTS} ({len(blob):,} bytes) and {BASE_CONFIG}")


if __name__ == "__main__":
    main()
