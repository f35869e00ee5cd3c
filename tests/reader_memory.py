"""Measure what reading a whole adapter costs: a child process reads one file (a zip, or a folder) with
lora_core.upload.many, drawing the overview (every module's spectrum), and reports its time and its peak memory
above what it held before (the kernel's VmHWM, reset just before with /proc/self/clear_refs).

Shared by tests/test_adapter_reader_limits.py (hostile adapters at the new sizes) and bench/bench_adapters.py (a
7B-shaped adapter within 10 s and within its file's size plus 256 MB), with the adapters they read: a Llama-shaped
one of any size (:func:`llama_shaped`) and the small GPT-2 one PEFT saves (:func:`tiny_gpt2_adapter`), which the
Adapters page's tests also use.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, sys, time
import torch
from lora_core.adapters.overview import summarize
from lora_core.upload.many import read_adapter
torch.set_num_threads(1)
def hwm_kb():
    with open("/proc/self/status") as f:
        return int(next(l for l in f if l.startswith("VmHWM:")).split()[1])
path = sys.argv[1]
source = open(path, "rb").read() if path.endswith(".zip") else path   # an upload is held in memory, as Streamlit does
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
before = hwm_kb()
start = time.perf_counter()
out = {"bytes": len(source) if isinstance(source, bytes) else None}
try:
    adapter = read_adapter(source)
    opened = time.perf_counter() - start
    summ = summarize(adapter.modules())
    out.update(error=None, modules=len(summ), trained=adapter.trained, open_s=opened)
except ValueError as exc:
    out.update(error=str(exc))
out.update(seconds=time.perf_counter() - start, peak_mb=(hwm_kb() - before) / 1024)
print(json.dumps(out))
"""


def measure(path: Path, timeout: float = 300) -> dict:
    """Read ``path`` (a .zip, read into memory first, or a folder) in a fresh process: error, seconds, peak_mb."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def llama_shaped(folder: Path, *, layers: int = 32, hidden: int = 4096, ffn: int = 11008, r: int = 16,
                 dtype: str = "bfloat16", seed: int = 0) -> Path:
    """A PEFT-format adapter of a Llama-2-7B's shape (q, k, v, o, gate, up, down in every layer) with random factors,
    written tensor by tensor into one safetensors file, beside its config."""
    import torch
    from safetensors.torch import save_file
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    shapes = {"self_attn.q_proj": (hidden, hidden), "self_attn.k_proj": (hidden, hidden),
              "self_attn.v_proj": (hidden, hidden), "self_attn.o_proj": (hidden, hidden),
              "mlp.gate_proj": (hidden, ffn), "mlp.up_proj": (hidden, ffn), "mlp.down_proj": (ffn, hidden)}
    tensors = {}
    for i in range(layers):
        for name, (d_in, d_out) in shapes.items():
            key = f"base_model.model.model.layers.{i}.{name}"
            tensors[f"{key}.lora_A.weight"] = (torch.randn(r, d_in, generator=g) * 0.01).to(getattr(torch, dtype))
            tensors[f"{key}.lora_B.weight"] = (torch.randn(d_out, r, generator=g) * 0.01).to(getattr(torch, dtype))
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": r, "lora_alpha": 2 * r, "base_model_name_or_path": "meta-llama/Llama-2-7b-hf",
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}))
    return folder


def zipped(folder: Path, to: Path, compress: bool = True) -> Path:
    import zipfile
    with zipfile.ZipFile(to, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED, compresslevel=1) as zf:
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            zf.write(folder / name, name)
    return to


def tiny_gpt2_adapter(folder: Path, target_modules: list[str]) -> Path:
    """PEFT's LoRA (r = 4, α = 8, random A and B) on a 2-layer GPT-2 of width 32 (Conv1D: fan_in_fan_out), saved."""
    import warnings

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    base = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=target_modules,
                                                fan_in_fan_out=True, init_lora_weights=False))
    model.save_pretrained(str(folder))
    return folder
