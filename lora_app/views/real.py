"""What the Real model page and its slides draw from finished runs: the curves, the numbers, the experiments' tables,
the spectra of a real update, the attention maps and the typed sequence."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from lora_core.finetune import HELD_OUT
from lora_core.tiny import MODULE_TYPES, parameter_count, read_config

from .. import figures
from ..compute import real as compute
from ..text import real as text
from ..widgets import charts
from .adapters import open_adapter


def curves_figure(first, second, total_steps: int, **kw):
    """A run's curves (stored or live; None draws empty axes) beside full fine-tuning's ``second`` (None: not drawn)."""
    losses, steps, accs = ((), (), ()) if first is None else (first.losses, first.eval_steps, first.accuracies)
    full = None if second is None else (second.losses, second.eval_steps, second.accuracies)
    return figures.real.run_curves(losses, steps, accs, full=full, total_steps=total_steps, **kw)


def sequence_figure(cfg, run, **kw):
    """The typed sequence, its right answer for the task, and the base model's digits (and the adapted model's)."""
    out = compute.outputs(cfg, run)
    rows = {"base model": out.base} | ({"adapted model": out.adapted} if out.adapted is not None else {})
    return figures.real.sequence_grid(rows, out.target, tokens=list(cfg.tokens),
                                      target_label=f"right answer ({cfg.settings.task})", **kw)


def model_view() -> None:
    """The shipped model: its size, its layers, how it was pre-trained and how well it sorts."""
    mcfg, record = read_config()
    rows = []
    for name in MODULE_TYPES:
        d_in, d_out = mcfg.module_shape(name)
        rows.append({"linear layer": name, "W shape (d_in×d_out)": f"{d_in}×{d_out}",
                     "numbers per layer": f"{d_in * d_out:,}", "layers": str(mcfg.layers)})
    m = charts.metric_row(4)
    m[0].metric("Numbers in the model", f"{parameter_count(compute.base_model()):,}")
    m[1].metric("Layers × heads", f"{mcfg.layers} × {mcfg.heads}")
    m[2].metric("Width, FFN width", f"{mcfg.d_model}, {mcfg.d_ff}")
    m[3].metric("Held-out sorting accuracy", text.pct(compute.base_accuracy("sort")))
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption(f"Pre-trained by `scripts/pretrain_tiny.py`: seed {record.get('seed')}, {record.get('steps'):,} "
               f"steps of {record.get('batch')} sequences, {record.get('seconds')} s on {record.get('machine')}. "
               f"The accuracy above is measured now, on {HELD_OUT:,} held-out sequences no training batch "
               f"ever holds.")


def numbers_view(lora_run, full_run) -> None:
    """A finished run against full fine-tuning: accuracy, trained numbers, the adapter's size, time and memory."""
    s = lora_run.settings
    m = charts.metric_row(4)
    base_acc = compute.base_accuracy(s.task)
    m[0].metric(f"Held-out accuracy on {s.task}", text.pct(lora_run.accuracy),
                f"{100 * (lora_run.accuracy - base_acc):+.1f} points from the base", delta_color="off")
    m[1].metric("Trained numbers", f"{lora_run.trainable:,}", f"{lora_run.trainable / lora_run.total:.1%} of "
                f"{lora_run.total:,}", delta_color="off")
    if not s.full:
        m[2].metric("Adapter on disk (PEFT zip)", f"{len(compute.adapter_zip(lora_run)) / 1024:.1f} kB")
    m[3].metric("Full fine-tuning's accuracy", text.pct(full_run.accuracy))
    shown = [("LoRA" if not s.full else "full fine-tuning", lora_run)] + ([] if s.full else [("full fine-tuning", full_run)])
    st.table([{"": name, "wall time": f"{r.wall_s:.2f} s", "peak memory": f"{r.peak_bytes / 1e6:.2f} MB",
               "trained numbers": f"{r.trainable:,}"} for name, r in shown])
    st.caption(f"Measured on this server's {lora_run.device} in {lora_run.dtype}, {s.steps} steps each. Peak memory: "
               f"{lora_run.memory_how}.")


def adapter_download(lora_run) -> None:
    box = st.container(horizontal=True, gap="small")
    box.download_button("Download the adapter (PEFT folder, zipped)", compute.adapter_zip(lora_run),
                        file_name=f"{lora_run.settings.key()}.zip", mime="application/zip", icon=":material/download:",
                        on_click="ignore")
    if box.button("Open it on the Adapters page", key="real_open_adapter", icon=":material/extension:"):
        open_adapter(f"run:{lora_run.settings.key()}")
    st.caption("Load it with `PeftModel.from_pretrained(base, folder)` on `lora_core.tiny.load_base_model()`. "
               "The Adapters page shows its spectrum, compares it with another run, and merges them.")


def _sentence_or_count(sentence: str, finished: int, total: int) -> None:
    if sentence:
        st.markdown(sentence)
    else:
        st.caption(f"{finished} of {total} runs finished.")


def grid_view(g: compute.Grid, key: str) -> None:
    """Table 5 on this model: accuracy per placement and task at one budget, and what it says once complete."""
    charts.chart(st, figures.real.placement_grid(g.labels, g.tasks, g.accuracy, g.trainable,
                                                 width=charts.column_width(1.0)), key=key)
    _sentence_or_count(text.grid_sentence(g.rows, g.tasks, g.accuracy), g.finished, g.total)


def sweep_view(sw: compute.Sweep, placement: str, key: str) -> None:
    """Table 6 on this model: accuracy against r for one placement, and what it says once complete."""
    charts.chart(st, figures.real.rank_curve(sw.ranks, sw.accuracy, full=sw.full or None,
                                             width=charts.column_width(1.0)), key=key)
    _sentence_or_count(text.sweep_sentence(sw.ranks, sw.accuracy, sw.full, placement), sw.finished, sw.total)


def family_view(fam: compute.Family, task: str, key: str) -> None:
    """The family at one r and placement: accuracy per variant and task, what each holds and costs, and the curves."""
    charts.chart(st, figures.real.placement_grid(
        fam.rows, fam.tasks, fam.accuracy, fam.trainable, width=charts.column_width(1.0),
        title="Held-out accuracy: the family at one r and placement",
        subtitle="rows: the variant · its rank · numbers it trains; outlined: best per task"), key=key)
    _sentence_or_count(text.family_sentence(fam.rows, fam.variants, fam.tasks, fam.accuracy, fam.trainable,
                                            fam.frozen_bytes, fam.wall_s), fam.finished, fam.total)
    st.dataframe(pd.DataFrame([
        {"run": row, "trained numbers": f"{fam.trainable[i]:,}",
         "frozen weights as stored": _measured(_first(fam.frozen_bytes[i]), _kb),
         "peak training memory": _measured(_first(fam.peak_bytes[i]), _kb),
         **{f"time on {t}": _measured(fam.wall_s[i, j], lambda v: f"{v:.2f} s") for j, t in enumerate(fam.tasks)}}
        for i, row in enumerate(fam.rows)]).set_index("run"), width="stretch")
    st.caption("Frozen weights as stored: QLoRA's block layers at 4 bits a weight and a float32 constant per 64; "
               "full fine-tuning freezes nothing. Peak memory: every tensor training holds at its peak, the same for "
               "both tasks (their shapes are the same). Time: this server's wall time for each run.")
    shown = {i: fam.losses[(i, task)] for i, v in enumerate(fam.variants) if v != "full" and (i, task) in fam.losses}
    if shown:
        keys = {i: ("vera_wide" if fam.variants[i] == "vera" and fam.rows[i] != _first_row(fam, "vera")
                    else fam.variants[i]) for i in shown}
        charts.chart(st, figures.family.variant_curves({keys[i]: np.asarray(v) for i, v in shown.items()},
                                                       {keys[i]: fam.rows[i] for i in shown},
                                                       {keys[i]: fam.trainable[i] for i in shown},
                                                       width=charts.column_width(1.0), title=f"Training loss on {task}",
                                                       loss_name="cross-entropy"), key=f"{key}_curves")
        st.caption(f"The training loss on **{task}**, the Fine-tune tab's task, of the runs finished so far "
                   f"({len(shown)} of {sum(v != 'full' for v in fam.variants)}); full fine-tuning's is on the "
                   f"Fine-tune tab. Accuracy is measured on {HELD_OUT:,} held-out sequences.")


def _first_row(fam: compute.Family, variant: str) -> str:
    return fam.rows[fam.variants.index(variant)]


def _first(values: np.ndarray) -> float:
    """The first finished run's value (NaN while none has finished)."""
    done = values[np.isfinite(values)]
    return float(done[0]) if done.size else float("nan")


def _measured(v: float, fmt) -> str:
    return "…" if not np.isfinite(v) else fmt(v)


def _kb(n: float) -> str:
    return f"{n / 1e3:,.1f} kB"


def spectra_view(lora_run, full_run, r: int) -> None:
    """How much of each real update lies in its top r directions, against LoRA's and a random matrix's."""
    spectra = compute.spectra(lora_run, full_run, r)
    st.markdown(text.energy_sentence(r, [(x.name, x.full_energy, x.random_energy) for x in spectra]))
    shown = [x for x in spectra if x.lora_sigma is not None][:2] or spectra[:2]
    box = st.container(horizontal=True, gap="small")
    for x in shown:
        charts.chart(box, figures.real.update_spectrum(x.full_sigma, x.lora_sigma, r, x.name,
                                                       width=min(520, charts.column_width(0.5))),
                     key=f"fig_real_sv_{x.name}", width="content")
    st.dataframe([{"matrix": x.name, f"full fine-tuning: top {r}": text.pct(x.full_energy),
                   f"LoRA: top {r}": "not adapted" if x.lora_energy is None else text.pct(x.lora_energy),
                   f"random matrix: top {r}": text.pct(x.random_energy)} for x in spectra],
                 hide_index=True, width="stretch")


def attention_view(cfg, run) -> None:
    """Each layer and head's attention map on the typed sequence, the adapted model's beside the base model's."""
    before, after = compute.attention_maps(cfg, run)
    labels = [str(d) for d in cfg.tokens]
    style = {"zmax": 1.0, "decimals": 2, "row_labels": labels, "col_labels": labels}
    changes = []
    for layer, maps in enumerate(before):
        for head in range(maps.shape[0]):
            name = f"layer {layer + 1}, head {head + 1}"
            items = [(maps[head], f"{name}: base", dict(style))]
            if after is not None:
                items.append((after[layer][head], f"{name}: adapted", dict(style)))
                changes.append((name, compute.attention_change(maps[head], after[layer][head])))
            charts.matrix_row(items, f"fig_real_att_{layer}_{head}")
    if changes:
        st.markdown(text.attention_sentence(changes))
