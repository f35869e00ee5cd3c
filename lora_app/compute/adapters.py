"""The Adapters page's calls into the core: open an adapter by its name, summarize it, compare two, merge them.

An adapter is named ``run:<key>`` (a finished run of the Real model page, exported to PEFT's format as its download
button does), ``dir:<entry>`` (an entry of the folder a teacher names with LORA_ADAPTERS_DIR: only entries listed
here are opened, so no path a user typed is ever read) or ``upload:1`` / ``upload:2`` (this session's uploads).
Opening an adapter reads its config and header only (0.05 s for a 7B-shaped one), so it is done on every run and
shares nothing between sessions; the summaries and comparisons, which read every module, are cached by what the
adapters are made of: a run's key, an entry's size and time, an upload's digest.
"""
from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

import streamlit as st
import torch

from lora_core.adapter import adapters_zip_bytes
from lora_core.adapters.merge import Factors, merge_adapters
from lora_core.adapters.overview import compare_modules, summarize
from lora_core.device import torch_threads
from lora_core.echo import shown
from lora_core.finetune import FinetuneSettings
from lora_core.upload.many import AdapterFile, adapters_dir, read_adapter

from ..config.adapters import EXAMPLES
from . import jobs

DIR_ENTRY = re.compile(r"^[A-Za-z0-9_.\- ]{1,120}$")
MAX_DIR_ENTRIES = 200
UPLOADS = ("upload:1", "upload:2")


def dir_entries() -> list[str]:
    """The adapters in LORA_ADAPTERS_DIR: its folders and zips with plain names, sorted (at most 200)."""
    folder = adapters_dir()
    if folder is None or not folder.is_dir():
        return []
    out = [p.name for p in folder.iterdir() if DIR_ENTRY.match(p.name) and not p.name.startswith(".")
           and (p.is_dir() or p.suffix.lower() == ".zip")]
    return sorted(out)[:MAX_DIR_ENTRIES]


def run_names() -> list[str]:
    """The two example runs, then every finished adapter run in the server's memory."""
    names = list(EXAMPLES)
    for run in jobs.STORE.recent():
        s = run.settings
        if not s.full and s.variant != "vera" and f"run:{s.key()}" not in names:
            names.append(f"run:{s.key()}")
    return names


def source_names(uploads: dict[str, object]) -> list[str]:
    return run_names() + [f"dir:{n}" for n in dir_entries()] + [u for u in UPLOADS if u in uploads]


def label(name: str) -> str:
    kind, _, rest = name.partition(":")
    if kind == "run":
        task = "reverse" if "-reverse-" in rest else "permute" if "-permute-" in rest else ""
        return f"Real model run ({task}): {rest}" if task else f"Real model run: {rest}"
    if kind == "dir":
        return f"server folder: {rest}"
    return f"your upload {rest}"


class Opened(NamedTuple):
    adapter: AdapterFile | None
    problem: str            # why it could not be opened ("" when it was)
    missing_run: object     # the FinetuneSettings of an example run not trained yet, else None
    key: str = ""           # what the adapter is made of (a run's key, an entry's size and time, an upload's digest)


def _digest(data) -> str:
    h = hashlib.sha256()
    for part in (data if isinstance(data, tuple) else (data,)):
        h.update(part)
    return h.hexdigest()


def _open_bytes(data) -> AdapterFile:
    return read_adapter(dict(zip(("adapter_config.json", "adapter_model.safetensors"), data))
                        if isinstance(data, tuple) else data)


def _open_dir(name: str) -> AdapterFile:
    return read_adapter(adapters_dir() / name)


def open_adapter(name: str, uploads: dict[str, object]) -> Opened:
    """The adapter of this name, or why not; ``uploads`` maps upload:1/2 to the zip's bytes or the two files'."""
    kind, _, rest = name.partition(":")
    try:
        if kind == "run":
            run = jobs.STORE.find(rest)
            if run is None:
                example = next((s for s in example_settings() if s.key() == rest), None)
                return Opened(None, "" if example else f"there is no finished Real model run {shown(rest, 80)} on "
                              "this server", example)
            return Opened(_open_bytes(_run_zip(run)), "", None, f"run:{rest}")
        if kind == "dir":
            if rest not in dir_entries():
                return Opened(None, f"{shown(rest, 80)} is not an adapter in this server's adapters folder", None)
            st_ = (adapters_dir() / rest).stat()
            stamp = (st_.st_size, st_.st_mtime_ns)
            return Opened(_open_dir(rest), "", None, f"dir:{rest}:{stamp}")
        if name in uploads:
            digest = _digest(uploads[name])
            return Opened(_open_bytes(uploads[name]), "", None, f"upload:{digest}")
        return Opened(None, f"{name} is empty: upload an adapter there first", None)
    except ValueError as e:
        return Opened(None, f"{label(name)}: {e}", None)


def example_settings() -> tuple:
    """The Real model page's default run on each task: the first example, needing no upload."""
    return (FinetuneSettings(task="reverse"), FinetuneSettings(task="permute"))


def _run_zip(run) -> bytes:
    s = run.settings
    return adapters_zip_bytes(run.adapters, r=s.r, alpha=s.alpha, rslora=s.rslora,
                              magnitudes=dict(run.magnitudes) or None)


@st.cache_data(max_entries=32, show_spinner=False)
def summaries(key: str, _adapter: AdapterFile) -> list:
    """Each module's spectrum (lora_core.adapters.overview.summarize), read one module at a time."""
    with torch_threads(1):
        return summarize(_adapter.modules())


@st.cache_data(max_entries=16, show_spinner=False)
def comparison(keys: tuple[str, str], _first: AdapterFile, _second: AdapterFile) -> list:
    with torch_threads(1):
        return compare_modules(_first.modules(), _second.modules())


def module_factors(adapter: AdapterFile, module: str):
    with torch_threads(1):
        return adapter.module(module)


class MergeResult(NamedTuple):
    exact: torch.Tensor        # Σ wᵢ·sᵢ·Aᵢ·Bᵢ (d×k)
    merged: torch.Tensor       # the merged A·B (its scaling is 1)
    A: torch.Tensor
    B: torch.Tensor
    r: int
    cross: torch.Tensor | None  # linear: the cross terms Σ_{i≠j} ±√|wᵢsᵢ|√|wⱼsⱼ|·Aᵢ·Bⱼ


def merge_module(parts: list, weights: list[float], combo: str, *, svd_rank: int, density: float,
                 seed: int) -> MergeResult:
    """One module merged from each adapter's factors (float32, as PEFT merges them)."""
    factors = [Factors(p.A.float(), p.B.float(), p.info.scaling) for p in parts]
    with torch_threads(1):
        m = merge_adapters([{"m": f} for f in factors], weights, combo, svd_rank=svd_rank or None, density=density,
                           seed=seed)["m"]
        exact = sum(w * f.scaling * (f.A.double() @ f.B.double()) for w, f in zip(weights, factors))
        cross = None
        if combo == "linear" and len(factors) > 1:
            roots = [(1 if w * f.scaling >= 0 else -1, abs(w * f.scaling) ** 0.5) for w, f in zip(weights, factors)]
            cross = sum(roots[i][0] * roots[i][1] * roots[j][1] * (factors[i].A.double() @ factors[j].B.double())
                        for i in range(len(factors)) for j in range(len(factors)) if i != j)
        return MergeResult(exact, m.A.double() @ m.B.double(), m.A, m.B, m.r, cross)


def merged_zip(adapters: list[AdapterFile], weights: list[float], combo: str, *, svd_rank: int, density: float,
               seed: int) -> bytes:
    """Every module merged, as a PEFT adapter folder zipped (r = lora_alpha: its scaling is 1)."""
    with torch_threads(1):
        held = [{m.info.name: Factors(m.A.float(), m.B.float(), m.info.scaling) for m in a.modules()} for a in adapters]
        merged = merge_adapters(held, weights, combo, svd_rank=svd_rank or None, density=density, seed=seed)
    ranks = {m.r for m in merged.values()}
    r = max(ranks)
    pairs = {}
    for name, m in merged.items():  # a module merged at a smaller rank is padded with zero directions
        A = torch.cat([m.A, m.A.new_zeros(m.A.shape[0], r - m.r)], 1)
        B = torch.cat([m.B, m.B.new_zeros(r - m.r, m.B.shape[1])], 0)
        pairs[name] = (A, B)
    return adapters_zip_bytes(pairs, r=r, alpha=float(r))
