"""Words of the Real model page, and the sentences it builds from measured numbers. The sentences are ours."""
from __future__ import annotations

import math

import numpy as np

SECTIONS = {"model": "The model", "finetune": "Fine-tune", "where": "Where LoRA goes",
            "rank": "How small r can be", "family": "The family", "before": "Before and after"}

INTRO = """
The other pages follow LoRA through one layer of made-up numbers. Here it adapts a real transformer.
The model is small enough to train on a laptop's CPU in seconds. It was pre-trained to **sort** eight
digits. LoRA then teaches it a new task while every pre-trained weight stays frozen. Every number on
this page comes from a run on this server, and no run result is typed in.
"""

MODEL_NOTE = """
An encoder: each of the eight positions sees all the others, and writes one digit. Each of the two
layers has a multi-head attention block (`q_proj`, `k_proj`, `v_proj`, `o_proj`), then a feed-forward
block (`up_proj`, a GELU, `down_proj`), each behind a layer norm. The linear layers have PEFT's usual
names, so `LoraConfig(target_modules=["q_proj", "v_proj"])` applies to this model unchanged.
Attention is the same function as on the Attention page.
"""

def tasks_note(permutation) -> str:
    code = ", ".join(f"{d}→{p}" for d, p in enumerate(permutation))
    return f"""
There are two new tasks, and they need different changes. **Reverse** keeps every digit and
changes where each position reads from: that is the routing. **Permute** keeps sorting and
changes what is written: each digit goes through a fixed code ({code}).
"""


FINETUNE_NOTE = """
Train runs AdamW on A and B only, with PEFT's start (B = 0, so the model starts as the base). It
then runs full fine-tuning with the same batches, as the baseline. Finished runs are kept on this
server by their settings. When anyone in the class asks for the same settings again, the result
shows at once.
"""

def where_note(budget: int, ffn_r: int, ffn_count: int, ffn_shapes: list[tuple[int, int]], dora: bool = False) -> str:
    shapes = " and ".join("×".join(map(str, shape)) for shape in ffn_shapes)
    extra = (" With DoRA on, each adapted matrix also trains its m, one number per output column, so the counts "
             "differ a little from one placement to the next." if dora else "")
    return f"""
The LoRA paper's Table 5 asks which matrices to adapt when the number of trained values is fixed.
The budget here is r = 8 on one attention matrix type, r = 4 on two, and r = 2 on all four, in both
layers: {budget:,} numbers each time. The FFN's matrices are wider ({shapes}), so it gets the whole
r whose count is nearest: r = {ffn_r}, {ffn_count:,} numbers. Each cell is the held-out token accuracy of
one run. The runs use the Fine-tune tab's α, rsLoRA, DoRA, learning rate, steps and seed.{extra}
"""


RANK_NOTE = """
The paper's Table 6 asks how small r can be. Here one placement is trained at r = 1, 2, 4, 8 and 16,
with α fixed as on the Fine-tune tab, so s = α/r falls as r grows (rsLoRA: α/√r), and DoRA if it is on there.
"""

FAMILY_NOTE = """
The Family page shows each variant on one matrix. Here each one adapts the whole model, on both tasks, at
the Fine-tune tab's r, matrices, layers, α, learning rate, steps and seed. **QLoRA** keeps every block's
linear layers in NF4, 4 bits a weight, and dequantizes one layer at a time, in the forward pass and again in
the backward. **PiSSA** starts A and B on W's top r singular directions and freezes the rest. **LoRA+** gives
B 16 times A's learning rate. **DoRA** also trains a length for each output column. **VeRA** trains only two
vectors per layer over frozen random matrices, so it is given a second, far larger r as well, as its paper does.
Every run uses the same AdamW with weight decay 0.01, and the same batches.
"""

SPECTRUM_NOTE = """
Does a real fine-tuning update have a low rank? Full fine-tuning changes each matrix by
ΔW = W_after − W_before, with no rank limit. Its singular values show how much of that change lies in
a few directions. The share of ‖ΔW‖² in the top r directions is the most a rank-r update could
capture. A random matrix of the same shape is given for comparison. LoRA's ΔW = s·A·B has rank at
most r by construction.
"""

BEFORE_NOTE = """
Each map shows, for one layer and head, how much each position (row) takes from each position
(column) on the sequence typed here. The maps on the left are the base model's. The maps on the
right are the adapted model's, from the Fine-tune tab's run.
"""


def runs_left(missing: int, total: int) -> str:
    return f"{missing} of {total} runs still to train; finished ones are kept."


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def points(x: float) -> str:
    return f"{100 * abs(x):.1f} point{'' if round(100 * abs(x), 1) == 1 else 's'}"


def grid_sentence(rows: list[str], tasks: list[str], acc: np.ndarray) -> str:
    """Which placement won on each task and by how much, built from the measured accuracies."""
    if np.isnan(acc).any():
        return ""
    lora_rows = [i for i, r in enumerate(rows) if r != "full fine-tuning"]
    full = rows.index("full fine-tuning") if "full fine-tuning" in rows else None
    parts, best = [], {}
    for j, task in enumerate(tasks):
        col = acc[lora_rows, j]
        order = np.argsort(-col, kind="stable")
        b, w = lora_rows[order[0]], lora_rows[order[-1]]
        best[task] = b
        runner = lora_rows[order[1]] if len(order) > 1 else b
        s = (f"On **{task}**, {rows[b]} won with {pct(acc[b, j])}, {points(acc[b, j] - acc[runner, j])} ahead of "
             f"{rows[runner]}; the worst was {rows[w]} at {pct(acc[w, j])}")
        if full is not None:
            gap = acc[full, j] - acc[b, j]
            s += (f". Full fine-tuning reached {pct(acc[full, j])}, "
                  + ("the same." if abs(gap) < 0.0005 else
                     f"{points(gap)} {'above' if gap > 0 else 'below'} the best placement."))
        parts.append(s if s.endswith(".") else s + ".")
    if len(tasks) == 2:
        t0, t1 = tasks
        j0, j1 = 0, 1
        diffs = [(abs(acc[i, j0] - acc[i, j1]), i) for i in lora_rows]
        gap, i = max(diffs)
        if best[t0] == best[t1] and gap < 0.05:
            parts.append("The two tasks give the same answer here: no placement differs between them by 5 points "
                         "or more.")
        else:
            parts.append(f"The tasks disagree most on {rows[i]}: {pct(acc[i, j0])} on {t0} against "
                         f"{pct(acc[i, j1])} on {t1}.")
    return " ".join(parts)


def sweep_sentence(ranks: list[int], acc: dict[str, list[float]], full: dict[str, float], placement: str) -> str:
    """The smallest r within one point of full fine-tuning, per task, and any fall as r grows."""
    parts = []
    for task, row in acc.items():
        if any(math.isnan(v) for v in row) or task not in full:
            return ""
        close = [r for r, a in zip(ranks, row) if full[task] - a <= 0.01]
        if close:
            parts.append(f"On **{task}**, {placement} reached {pct(row[ranks.index(close[0])])} at r = {close[0]}, "
                         f"within a point of full fine-tuning ({pct(full[task])}).")
        else:
            best = int(np.argmax(row))
            parts.append(f"On **{task}**, no r up to {ranks[-1]} came within a point of full fine-tuning "
                         f"({pct(full[task])}); the best was {pct(row[best])} at r = {ranks[best]}.")
        falls = [(ranks[i], ranks[i + 1], row[i] - row[i + 1]) for i in range(len(row) - 1) if row[i] - row[i + 1] > 0.02]
        if falls:
            lo, hi, drop = max(falls, key=lambda f: f[2])
            parts.append(f"Accuracy fell by {points(drop)} from r = {lo} to r = {hi}. A larger r is not always "
                         f"better at a fixed α and step count: s = α/r shrinks, so the update starts smaller.")
    return " ".join(parts)


def energy_sentence(r: int, shares: list[tuple[str, float, float]]) -> str:
    """shares: (matrix, full fine-tuning's top-r share, a random matrix's top-r share) per matrix."""
    if not shares:
        return ""
    full = np.array([s[1] for s in shares])
    rand = np.array([s[2] for s in shares])
    lo, hi = shares[int(np.argmin(full))], shares[int(np.argmax(full))]
    return (f"Across the {len(shares)} matrices, the top {r} direction{'s' if r > 1 else ''} of full fine-tuning's "
            f"update hold {pct(full.min())} to {pct(full.max())} of its energy (median {pct(float(np.median(full)))}); "
            f"a random matrix of the same shape holds {pct(float(np.median(rand)))}. The least concentrated is "
            f"{lo[0]}, the most {hi[0]}. "
            + _energy_verdict(r, float(np.median(full)), float(np.median(rand)), shares))


def _energy_verdict(r: int, full: float, rand: float, shares) -> str:
    if full >= 0.9:
        return f"So nearly all of the real update lies in {r} directions: a rank-{r} adapter can hold almost all of it."
    if full >= rand + 0.1:
        return (f"So the real update leans towards a few directions ({pct(full)} against {pct(rand)} for a random "
                f"matrix), but it is not of rank {r}: the remaining directions still hold {pct(1 - full)} of it.")
    return "So on this model the real update is not much more concentrated than a random one."


def attention_sentence(changes: list[tuple[str, float]]) -> str:
    """changes: (\"layer L, head h\", mean total-variation distance between before and after rows)."""
    if not changes:
        return ""
    name, most = max(changes, key=lambda c: c[1])
    name_least, least = min(changes, key=lambda c: c[1])
    return (f"The attention moved most in {name}: on average, each row of its map moved {pct(most)} of its weight "
            f"to other positions. It moved least in {name_least}, at {pct(least)}.")


def _kb(n: float) -> str:
    return f"{n / 1e3:,.1f} kB"


def family_sentence(rows: list[str], variants: list[str], tasks: list[str], acc: np.ndarray, trainable: list[int],
                    frozen: np.ndarray, wall: np.ndarray) -> str:
    """What the family's runs say, built from the measured numbers: the best per task, QLoRA's frozen bytes against
    LoRA's, DoRA's time against LoRA's, and VeRA's numbers against LoRA's."""
    if np.isnan(acc).any() or "lora" not in variants:
        return ""
    adapters = [i for i, v in enumerate(variants) if v != "full"]
    lora = variants.index("lora")
    parts = []
    for j, task in enumerate(tasks):
        col = acc[adapters, j]
        order = np.argsort(-col, kind="stable")
        b, w = adapters[order[0]], adapters[order[-1]]
        s = f"On **{task}**, {rows[b]} reached the most, {pct(acc[b, j])}; {rows[w]} the least, {pct(acc[w, j])}"
        if b != lora:
            s += f" (LoRA: {pct(acc[lora, j])})"
        parts.append(s + ".")
    if "qlora" in variants:
        q = variants.index("qlora")
        parts.append(f"QLoRA kept the frozen model in {_kb(float(np.nanmean(frozen[q])))} against LoRA's "
                     f"{_kb(float(np.nanmean(frozen[lora])))}; on a model this small the activations, not the weights, "
                     f"take most of the memory, so its peak fell far less.")
    if "dora" in variants:
        d = variants.index("dora")
        ratio = float(np.nansum(wall[d]) / np.nansum(wall[lora]))
        parts.append(f"DoRA took {ratio:.1f}× LoRA's time per run here.")
    veras = [i for i, v in enumerate(variants) if v == "vera"]
    if veras:
        i = max(veras, key=lambda k: float(np.mean(acc[k])))
        parts.append(f"{rows[i]} trained {trainable[i]:,} numbers to LoRA's {trainable[lora]:,}.")
    parts.append("This is one small model and two tasks at one setting: a ranking here is not a ranking in general.")
    return " ".join(parts)
