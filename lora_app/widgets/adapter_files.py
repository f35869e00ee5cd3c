"""Saving the current A_Q and B_Q as a PEFT adapter, and loading one: the page side of lora_core.adapter
(writing) and lora_core.upload (reading)."""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from lora_core import MAX_ADAPTER_BYTES, LoadedAdapter, adapter_zip_bytes, load_peft_adapter_zip
from lora_core.upload import VALUE_LIMIT

from ..config import ALPHA_MAX, ALPHA_MIN, ALPHA_STEP, ExploreConfig
from ..echo import echo, plain

UPLOAD_KEY = "adapter_upload"
DORA_KEY = "uploaded_magnitude"  # (d, k, m) of the last uploaded DoRA adapter, read by the Family page


def uploaded_magnitude(d: int, k: int) -> tuple[float, ...]:
    """The last uploaded DoRA adapter's m, while the example is still its d×k; () otherwise."""
    kept = st.session_state.get(DORA_KEY)
    return kept[2] if kept and kept[:2] == (d, k) else ()


def download_button(A: np.ndarray, B: np.ndarray, cfg: ExploreConfig, label: str, key: str) -> None:
    """A zip of adapter_model.safetensors and adapter_config.json that ``PeftModel.from_pretrained`` opens.

    The zip is made when the button is clicked, not on every run: scrubbing through training steps
    then sends no file at all.
    """
    problem = unsavable(A, B)
    if problem:
        # what the upload refuses, the download does not offer: a saved adapter always loads again
        st.button(label, key=key, disabled=True, icon=":material/download:", help=problem)
        st.caption(f"Not saved as an adapter: {problem}.")
        return
    A, B = torch.tensor(A), torch.tensor(B)  # copies: the arrays may be read-only cache entries
    r, alpha, rslora = cfg.r, cfg.alpha, cfg.rslora
    st.download_button(label, lambda: adapter_zip_bytes(A, B, r=r, alpha=alpha, rslora=rslora),
                       file_name=f"lora_q_proj_r{cfg.r}.zip", mime="application/zip", key=key,
                       icon=":material/download:",
                       help=f"For a module whose q_proj is nn.Linear({cfg.d}, {cfg.k}, bias=False) holding W_Qᵀ.")


def unsavable(A: np.ndarray, B: np.ndarray) -> str | None:
    """Why A, B cannot be saved as an adapter this app would load again, or None."""
    for name, M in (("A_Q", A), ("B_Q", B)):
        bad = ~np.isfinite(M) | (np.abs(M) > VALUE_LIMIT)
        if bad.any():
            i, j = (int(x) for x in np.argwhere(bad)[0])
            return (f"{name}[{i + 1}, {j + 1}] is {M[i, j]:g}, and an adapter's weights must be finite and within "
                    f"±{VALUE_LIMIT:g}")
    return None


def upload_outcome(upload, d: int, k: int) -> tuple[LoadedAdapter | None, tuple[str, str]]:
    """What an upload gives for a d×k W_Q: the adapter (or None) and the message to show, as markdown.

    ``upload`` is what st.file_uploader returns (``.name``, ``.size``, ``.getvalue()``). The file name and
    everything the core's message quotes came from the user, so both are echoed, never rendered.
    """
    name = echo(getattr(upload, "name", "the file"))
    try:
        # the widget's limit is the browser's; Streamlit's server.maxUploadSize (17 MB) and this are the server's
        if upload.size > MAX_ADAPTER_BYTES:
            raise ValueError(f"the file is {upload.size:,} bytes; adapters up to {MAX_ADAPTER_BYTES:,} bytes are "
                             f"accepted")
        loaded = load_peft_adapter_zip(upload.getvalue(), d=d, k=k)
        if not ALPHA_MIN <= loaded.alpha <= ALPHA_MAX or (loaded.alpha / ALPHA_STEP) % 1:
            raise ValueError(f"its lora_alpha = {loaded.alpha:g} is not one the α slider can show "
                             f"({ALPHA_MIN:g}…{ALPHA_MAX:g} in steps of {ALPHA_STEP:g})")
    except ValueError as err:
        return None, ("error", f"{name} was not loaded: {plain(str(err))}. Nothing was changed.")
    dora = ("" if loaded.magnitude is None else
            f" It is a DoRA adapter: its magnitude m ({k} numbers) is not part of LoRA's Q, which this page shows; the "
            "Family page's DoRA part uses it.")
    return loaded, ("success", f"Loaded {name}: {echo(loaded.target_module)} with r = {loaded.r}, "
                               f"lora_alpha = {loaded.alpha:g}{', rsLoRA' if loaded.rslora else ''}. "
                               f"Its A_Q and B_Q now fill every figure, here and on the Training page.{dora}")


def _load() -> None:
    """Runs before the page: on success the sidebar's r, α, rsLoRA and the A_Q, B_Q cells take the adapter's values."""
    ss = st.session_state
    upload = ss.get(UPLOAD_KEY)
    ss["adapter_message"] = None
    if upload is None:
        return
    loaded, ss["adapter_message"] = upload_outcome(upload, int(ss["d"]), int(ss["k"]))
    if loaded is None:
        return
    edits = ss.setdefault("edits", {})
    edits["A"] = {(i, j): float(v) for (i, j), v in np.ndenumerate(loaded.A.numpy())}
    edits["B"] = {(i, j): float(v) for (i, j), v in np.ndenumerate(loaded.B.numpy())}
    ss.update(r=loaded.r, alpha=float(loaded.alpha), rslora=loaded.rslora)
    # DoRA's m belongs to this d×k and these A and B; a plain LoRA upload takes an earlier one away
    ss[DORA_KEY] = None if loaded.magnitude is None else (int(ss["d"]), int(ss["k"]), tuple(loaded.magnitude.tolist()))
    ss["editor_version"] = {name: v + 1 for name, v in ss.get("editor_version", {}).items()}


def upload_box(cfg: ExploreConfig) -> None:
    st.file_uploader(f"Load a PEFT adapter (.zip with adapter_model.safetensors and adapter_config.json) for "
                     f"W_Q {cfg.d}×{cfg.k}", type=["zip"], key=UPLOAD_KEY, on_change=_load,
                     max_upload_size=MAX_ADAPTER_BYTES // 2**20,
                     help=f"Safetensors only: pickled .bin files are refused. Set d and k to the adapter's first. "
                          f"Up to {MAX_ADAPTER_BYTES // 2**20} MB, enough for d = k = r = 1024 in float64.")
    message = st.session_state.get("adapter_message")
    if message:
        kind, text = message
        (st.error if kind == "error" else st.success)(text, icon=":material/block:" if kind == "error" else
                                                      ":material/check_circle:")
