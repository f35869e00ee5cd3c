"""Finished fine-tuning runs on disk: one safetensors file per run, verified when it is read back.

A teacher prepares the expensive experiment grids before class (``scripts/prepare_runs.py``), and every
server process (or replica) that points at the same folder serves them. A file is trusted only if:

- it is a safetensors file no larger than :data:`MAX_RUN_BYTES` whose metadata parses;
- it names the base model it was trained on (:func:`lora_core.tiny.model_digest`) and that is this one;
- its settings are the settings asked for, and pass :func:`lora_core.finetune.check_settings`;
- its tensors are the adapters (or the full model) those settings train, with the right shapes;
- the held-out accuracy recomputed here from its weights equals the accuracy it records.

So no number the page shows from a file is taken on trust: the final accuracy is measured again.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, fields
from pathlib import Path
from types import MappingProxyType

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .device import torch_threads
from .finetune import HELD_OUT, FinetuneRun, FinetuneSettings, check_settings, module_names, predict
from .tiny import TinyTransformer, held_out_set, model_digest, task_targets
from .variants import vera_layer_projections

MAX_RUN_BYTES = 4 * 1024 * 1024   # a full fine-tuning run holds the whole model: 72 kB in float32
FORMAT = "lora-explainer-run/1"


def run_path(folder: Path | str, settings: FinetuneSettings) -> Path:
    return Path(folder) / f"{settings.key()}.safetensors"


def _settings_dict(s: FinetuneSettings) -> dict:
    d = asdict(s)
    d["targets"], d["layers"] = list(s.targets), list(s.layers)
    return d


def _settings_from(d) -> FinetuneSettings:
    names = {f.name for f in fields(FinetuneSettings)}
    if isinstance(d, dict) and set(d) == names - {"variant"}:  # written before DoRA: a LoRA or full run
        d = {**d, "variant": "lora"}
    if isinstance(d, dict) and set(d) == (names - {"variant"}) | {"dora"}:  # before the other variants
        if not isinstance(d["dora"], bool):
            raise ValueError("its settings are not a run's settings (dora is not true or false)")
        d = {k: v for k, v in d.items() if k != "dora"} | {"variant": "dora" if d["dora"] else "lora"}
    if not isinstance(d, dict) or set(d) != names:
        raise ValueError("its settings are not a run's settings")
    d = dict(d)
    if not isinstance(d["targets"], list) or not isinstance(d["layers"], list):
        raise ValueError("its targets or layers are not lists")
    d["targets"], d["layers"] = tuple(d["targets"]), tuple(d["layers"])
    return FinetuneSettings(**d)


def run_bytes(run: FinetuneRun, digest: str) -> bytes:
    """The run as safetensors bytes: its weights as tensors, everything else as JSON metadata."""
    if run.settings.full:
        tensors = {f"full.{k}": v.contiguous() for k, v in run.full_state.items()}
    elif run.settings.variant == "vera":  # what trained: the frozen projections are PEFT's, made again from its key
        tensors = {f"{n}.{part}": t.contiguous() for n, (d, b) in run.vectors.items() for part, t in (("d", d), ("b", b))}
    else:
        tensors = ({f"{n}.{part}": t.contiguous() for n, (A, B) in run.adapters.items() for part, t in (("A", A), ("B", B))}
                   | {f"{n}.m": m.contiguous() for n, m in run.magnitudes.items()})
    meta = {"format": FORMAT, "base": digest, "settings": _settings_dict(run.settings), "losses": list(run.losses),
            "eval_steps": list(run.eval_steps), "accuracies": list(run.accuracies), "scaling": run.scaling,
            "trainable": run.trainable, "total": run.total, "wall_s": run.wall_s, "peak_bytes": run.peak_bytes,
            "memory_how": run.memory_how, "device": run.device, "dtype": run.dtype, "stopped": run.stopped,
            "frozen_bytes": run.frozen_bytes}
    return save_safetensors(tensors, metadata={"run": json.dumps(meta)})


def save_run(folder: Path | str, run: FinetuneRun, digest: str) -> Path:
    """Write atomically (a temporary file renamed into place), so a reader never sees half a file."""
    if run.stopped:
        raise ValueError("a stopped run is not saved: only finished runs are shared")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = run_path(folder, run.settings)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(run_bytes(run, digest))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # a failed write leaves nothing half-written behind
        raise
    return path


def _floats(values, what: str, lo: float = -math.inf, hi: float = math.inf) -> tuple[float, ...]:
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                               and math.isfinite(v) and lo <= v <= hi for v in values):
        raise ValueError(f"its {what} are not finite numbers in range")
    return tuple(float(v) for v in values)


def read_run(data: bytes, base: TinyTransformer, settings: FinetuneSettings | None = None) -> FinetuneRun:
    """A run from :func:`run_bytes`, checked against ``base`` and (if given) the settings asked for.

    Raises ValueError naming the first check the data fails.
    """
    if len(data) > MAX_RUN_BYTES:
        raise ValueError(f"it is {len(data):,} bytes, more than a run's {MAX_RUN_BYTES:,}")
    try:
        if len(data) < 8:
            raise ValueError
        header_len = int.from_bytes(data[:8], "little")
        if header_len > 256 * 1024 or 8 + header_len > len(data):
            raise ValueError
        header = json.loads(data[8:8 + header_len])
        meta = json.loads(header["__metadata__"]["run"])
        tensors = load_safetensors(data)
    except Exception:  # noqa: BLE001 - any failure to parse is the same refusal
        raise ValueError("it is not a run file (no readable safetensors header with run metadata)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"its format is not {FORMAT}")
    if meta.get("base") != model_digest(base):
        raise ValueError("it was trained on a different base model")
    found = _settings_from(meta.get("settings"))
    if settings is not None and found != settings:
        raise ValueError("its settings are not the ones asked for")
    check_settings(base.cfg, found)
    losses = _floats(meta.get("losses"), "losses", 0)
    accs = _floats(meta.get("accuracies"), "accuracies", 0, 1)
    steps = meta.get("eval_steps")
    if (len(losses) != found.steps or not isinstance(steps, list) or len(steps) != len(accs)
            or not all(isinstance(s, int) and 0 <= s <= found.steps for s in steps) or meta.get("stopped") is not False):
        raise ValueError("its curves do not match a finished run of its settings")
    device, dtype = base.embed.weight.device, base.embed.weight.dtype
    if found.full:
        expected = {f"full.{k}": tuple(v.shape) for k, v in base.state_dict().items()}
    else:
        expected = {}
        for n in module_names(base.cfg, found):
            d_in, d_out = base.cfg.module_shape(n.rsplit(".", 1)[1])
            if found.variant == "vera":
                expected[f"{n}.d"], expected[f"{n}.b"] = (found.r,), (d_out,)
                continue
            expected[f"{n}.A"], expected[f"{n}.B"] = (d_in, found.r), (found.r, d_out)
            if found.dora:
                expected[f"{n}.m"] = (d_out,)
    if {k: tuple(v.shape) for k, v in tensors.items()} != expected:
        raise ValueError("its tensors are not the ones its settings train")
    if not all(t.is_floating_point() and bool(torch.isfinite(t).all()) for t in tensors.values()):
        raise ValueError("a tensor holds a value that is not a finite number")
    magnitudes, vectors, adapters, full_state = {}, {}, {}, {}
    names = module_names(base.cfg, found)
    if found.full:
        full_state = {k[len("full."):]: v for k, v in tensors.items()}
    elif found.variant == "vera":
        vectors = {n: (tensors[f"{n}.d"], tensors[f"{n}.b"]) for n in names}
        shapes = [base.cfg.module_shape(n.rsplit(".", 1)[1]) for n in names]
        projections = vera_layer_projections(names, shapes, found.r, torch.float32, "cpu")
        adapters = {n: ((A.to(d) * d), (B.to(b) * b)) for n, (A, B) in projections.items() for d, b in [vectors[n]]}
    else:
        adapters = {n: (tensors[f"{n}.A"], tensors[f"{n}.B"]) for n in names}
        magnitudes = {n: tensors[f"{n}.m"] for n in names} if found.dora else {}
    scaling = 1.0 if found.full else found.scaling
    run = FinetuneRun(found, losses, tuple(steps), accs, adapters, full_state, scaling, int(meta.get("trainable", -1)),
                      int(meta.get("total", -1)), float(meta.get("wall_s", math.nan)), int(meta.get("peak_bytes", -1)),
                      str(meta.get("memory_how", ""))[:300], str(meta.get("device", ""))[:40],
                      str(meta.get("dtype", ""))[:20], False, MappingProxyType(magnitudes), MappingProxyType(vectors),
                      int(meta.get("frozen_bytes", -1)))
    held = held_out_set(base.cfg, HELD_OUT)
    with torch_threads(1):
        measured = float((predict(base, run, held) == task_targets(found.task, held)).double().mean())
    if str(device) == run.device and str(dtype).replace("torch.", "") == run.dtype and measured != accs[-1]:
        raise ValueError(f"its weights reach {measured:.2%} held-out accuracy, not the {accs[-1]:.2%} it records")
    if abs(measured - accs[-1]) > 0.005:  # another device rounds differently, but not by half a percent
        raise ValueError(f"its weights reach {measured:.2%} held-out accuracy, not the {accs[-1]:.2%} it records")
    return run


def load_run(folder: Path | str, base: TinyTransformer, settings: FinetuneSettings) -> FinetuneRun | None:
    """The saved run of ``settings`` in ``folder``, or None if there is none; raises ValueError if it fails a check."""
    path = run_path(folder, settings)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_RUN_BYTES + 1)
    except FileNotFoundError:
        return None
    return read_run(data, base, settings)
