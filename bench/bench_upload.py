"""Peak memory and time to refuse each adapter bomb of tests/test_adapter_limits.py, before and after.

    python bench/bench_upload.py [REV]

"before" is lora_core/adapter.py as of git revision REV (default 0d76063, the last one before the
streaming loader), loaded beside the current package; "after" is the working tree's. Each bomb runs in
a fresh process that imports everything, loads a good adapter, resets the kernel's peak-RSS mark
(/proc/self/clear_refs) and then loads the bomb: the peak is VmHWM's growth, the time perf_counter's.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from test_adapter_limits import BIG, BOMBS

_CHILD = r"""
import importlib.util, json, sys, time
import bz2, lzma, zipfile, zlib, torch, safetensors.torch
import lora_core
path, bomb = sys.argv[1], sys.argv[2]
if path == "-":
    import lora_core as adapter  # the working tree: the writer and lora_core.upload's reader
else:
    spec = importlib.util.spec_from_file_location("lora_core._adapter_before", path)
    adapter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(adapter)
def hwm_kb():
    with open("/proc/self/status") as f:
        return int(next(l for l in f if l.startswith("VmHWM:")).split()[1])
adapter.load_peft_adapter_zip(adapter.adapter_zip_bytes(torch.ones(4, 2), torch.ones(2, 4), r=2, alpha=2.0), d=4, k=4)
with open(bomb, "rb") as f:
    data = f.read()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = hwm_kb()
start = time.perf_counter()
try:
    adapter.load_peft_adapter_zip(data, d=int(sys.argv[3]), k=int(sys.argv[3]))
    error = None
except ValueError as exc:
    error = str(exc)
ms = (time.perf_counter() - start) * 1000
print(json.dumps({"error": error, "peak_mb": (hwm_kb() - before) / 1024, "ms": ms}))
"""


def run(module: str, bomb: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, module, str(bomb), str(BIG)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        return {"error": f"crashed: {proc.stderr.strip().splitlines()[-1:]}", "peak_mb": float("nan"),
                "ms": float("nan")}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(rev: str = "0d76063") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "adapter_before.py"
        old.write_text(subprocess.run(["git", "show", f"{rev}:lora_core/adapter.py"], cwd=ROOT, check=True,
                                      capture_output=True, text=True).stdout)
        print("| bomb | zip bytes | before: peak MB | before: ms | before: outcome | after: peak MB | after: ms |"
              " after: outcome |\n|---|---:|---:|---:|---|---:|---:|---|")
        for name, (make, _) in BOMBS.items():
            bomb = Path(tmp) / "bomb.zip"
            bomb.write_bytes(make())
            cells = [name, f"{bomb.stat().st_size:,}"]
            for module in (str(old), "-"):
                r = run(module, bomb)
                outcome = "**loaded**" if r["error"] is None else "refused: " + r["error"][:90].replace("|", "/")
                cells += [f"{r['peak_mb']:.1f}", f"{r['ms']:.1f}", outcome]
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
