"""Words of the Family page. Facts from REFERENCE.md, PEFT 0.21 and the five papers; the sentences are ours."""
from __future__ import annotations

import math

from .latex import sci_text

SECTIONS = {
    "qlora": "QLoRA",
    "dora": "DoRA",
    "pissa": "PiSSA",
    "loraplus": "LoRA+",
    "vera": "VeRA",
    "compare": "All six on one task",
}

INTRO = """
PEFT's `LoraConfig` offers more than the LoRA of 2021. Each part below takes one of its variants and applies
it to the same X and W_Q as Explore (the sidebar's sizes, seed, r and α), so you can see what it keeps frozen,
what it trains, and what it stores. The last part trains all six on the Training page's task.
"""

PEFT_OPTION = {
    "lora": "`LoraConfig(r=…, lora_alpha=…)`",
    "qlora": "`BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=\"nf4\")` for the base model, then "
             "`LoraConfig`",
    "dora": "`LoraConfig(use_dora=True)`",
    "pissa": "`LoraConfig(init_lora_weights=\"pissa\")`",
    "loraplus": "`create_loraplus_optimizer(model, torch.optim.AdamW, lr=…, loraplus_lr_ratio=λ)`",
    "vera": "`VeraConfig(r=…)`",
}

QLORA_NOTE = """
QLoRA keeps LoRA's A and B as they are and stores the **frozen** W in 4 bits. W is read as PEFT stores it
(Wᵀ, row by row) in blocks of 64 numbers. Each block keeps its largest |value|, the **absmax**, and each
number becomes one of 16 **NF4 levels** times that absmax. The levels are spaced like a normal distribution:
dense near 0, where most weights are, and sparse at ±1. In the forward pass W̃ (level × absmax) stands in
for W, and the gradient still reaches only A and B.
"""

QLORA_CODES = """
Each weight is stored as a 4-bit code, 0 to 15: the index of its level (the code's colour is its level). Code 7 is
an exact zero, so a weight of 0 stays 0. The bars show the sixteen levels; W̃ = level × absmax.
"""

DORA_NOTE = """
DoRA splits each column of the adapted weight into a **length** and a **direction**. With V = W + s·A·B, the
layer uses W′ = m ⊙ V/‖V‖: every column of V is scaled to length 1 and then to its own magnitude m_j.
m has one number per output column (k numbers) and trains beside A and B. It starts at ‖W + s·A·B‖, so
at the start W′ = W + s·A·B and DoRA computes what LoRA computes. PEFT, like the paper, treats ‖V‖ as a
constant when it takes the gradient. That saves memory, and so the gradient reaches A, B and m but
not the norm. The numbers below do the same.
"""

UPLOADED_M = ("The magnitude m comes from the DoRA adapter loaded on Explore (its lora_magnitude_vector), with its A_Q "
              "and B_Q: this is the layer that adapter trained, W′ = m ⊙ V/‖V‖. Load a plain LoRA adapter, or change "
              "d or k, to start from m = ‖V‖ again.")

PISSA_NOTE = """
PiSSA starts A and B on W's **largest singular directions** instead of B = 0. Write W = U·diag(σ)·Vᵀ.
A takes the first r columns of U, B the first r rows of Vᵀ, each scaled by √(σᵢ/s), so that s·A·B is
W's best rank-r approximation. The frozen base becomes the **residual** W_res = W − s·A·B. The model is
unchanged at step 0 because W_res + s·A·B = W, not because the update is zero. Training then starts
on the directions that carry the most of W.
"""

LORAPLUS_NOTE = """
LoRA+ changes only the optimizer: **B learns λ times faster than A**. Its authors show that with one
learning rate for both, a wide layer learns its features inefficiently, and they recommend λ = 16. PEFT has
no default for λ; its documentation passes 16. The adapter, its size and its forward pass are LoRA's.
"""

VERA_NOTE = """
VeRA freezes A and B too. They are random, drawn once from a seed, and **shared by every layer** of the
model. What trains is two vectors: d (r numbers) scales each of the r directions, and b (k numbers)
scales each output column. So ΔW = A·diag(d)·B·diag(b). A layer trains r + k numbers where LoRA
trains r·(d + k), so VeRA can use a much larger r for the same budget. PEFT starts d at 0.1 and b at 0,
so ΔW = 0 at step 0.
"""

COMPARE_NOTE = """
The task is the Training page's: reach T = X·(W_Q + ΔW*), where ΔW* is a seeded update of rank r*. The loss is
the mean of (Q − T)². Each variant starts from PEFT's initialization (B = 0, or its own) with the same
seed and takes the same AdamW steps (β = 0.9, 0.999, ε = 10⁻⁸, λ = 0.01). Only LoRA+ gives B a larger rate.
The core trains all six here with torch's autograd. The tests check each one against PEFT or bitsandbytes.
"""


def bits_sentence(bits: float, bits_other: float, double_quant: bool, blocks: int, count: int) -> str:
    """What a weight of W costs in NF4, from the numbers."""
    other = "without" if double_quant else "with"
    how = ("the absmax constants are stored in 8 bits, in blocks of 256 with one 32-bit constant each"
           if double_quant else "each block's absmax is a 32-bit float: 32/64 = 0.5 bits a weight")
    return (f"**{bits:.4g} bits a weight** instead of 16: 4 bits of code, and {how}. {other.capitalize()} "
            f"double quantization it would be {bits_other:.4g}. W's {count:,} weights make {blocks:,} "
            f"block{'s' if blocks != 1 else ''} of up to 64.")


def quantization_sentence(max_error: float, max_abs: float, q_gap: float) -> str:
    """How far W̃ is from W, and Q over W̃ from Q over W."""
    share = max_error / max_abs if max_abs > 0 else 0.0
    return (f"The largest rounding error |W − W̃| is **{max_error:.3g}**, {share:.1%} of the largest |W|. "
            f"Through the same A and B it moves Q by at most **{q_gap:.3g}**. That error stays in the frozen "
            "base, and training A and B can make up for part of it.")


def dora_sentence(norm, m_after, turned_deg, loss_before: float, loss_after: float, lr: float) -> str:
    """What one AdamW step did to the magnitude and the direction."""
    dm = [after - before for before, after in zip(norm, m_after)]
    biggest = max(range(len(dm)), key=lambda j: abs(dm[j]))
    turn = max(range(len(turned_deg)), key=lambda j: turned_deg[j])
    return (f"In one AdamW step (lr = {lr:g}) the magnitudes moved by at most **{abs(dm[biggest]):.3g}** (column "
            f"{biggest + 1}: {norm[biggest]:.4g} → {m_after[biggest]:.4g}), and the directions turned by at most "
            f"**{turned_deg[turn]:.3g}°** (column {turn + 1}). The loss went from {loss_before:.4g} to "
            f"{loss_after:.4g}. Length and direction move separately: that separation is what DoRA adds to LoRA.")


def zero_columns_sentence(columns) -> str:
    """Why DoRA cannot start here: a column of V = W + s·A·B with no length has no direction."""
    which = ", ".join(str(j + 1) for j in columns)
    return (f"Column{'s' if len(columns) != 1 else ''} {which} of V = W_Q + s·A_Q·B_Q {'are' if len(columns) != 1 else 'is'} "
            "all zeros. A zero column has length 0 and no direction, so DoRA's V/‖V‖ divides by zero there (PEFT's "
            "layer does too) and no step can be taken. Change the seed, the sizes or the preset, or edit W_Q on Explore.")


def pissa_sentence(share: float, r: int, rebuilt_error: float) -> str:
    again = "exactly" if rebuilt_error == 0 else f"to within {sci_text(rebuilt_error, 2)} (rounding)"
    return (f"The top {r} direction{'s' if r != 1 else ''} hold **{share:.1%}** of W's energy (Σσᵢ² over the top "
            f"r, out of all of them). At step 0 the adapter holds that part and the frozen residual holds the rest. "
            f"Added back together they give W again, {again}.")


def counts_sentence(lora: int, vera: int, r: int, d: int, k: int, lr: float) -> str:
    ratio = lora / vera
    return (f"At {d}×{k} and r = {r}, VeRA trains r + k = **{vera:,}** numbers where LoRA trains r·(d + k) = "
            f"**{lora:,}** ({ratio:.3g}× as many). d and b train with AdamW at lr = {lr:g}, as A and B do in LoRA; "
            "A and B stay as they were drawn.")


def compare_sentence(names: dict, finals: dict, best: str, steps: int, asked: int) -> str:
    """Which variant fell furthest, by how much against LoRA, and the caveat; built from the losses."""
    if not best:
        return "No run reached a finite loss: lower the learning rate."
    lora = finals["lora"]
    head = f"After {steps:,} steps, **{names[best]}** reached the lowest loss here, {sci_text(finals[best], 3)}"
    if best == "lora":
        head += "."
    elif math.isfinite(lora) and finals[best] > 0:
        head += f", {lora / finals[best]:.3g}× lower than LoRA's {sci_text(lora, 3)}."
    else:
        head += f"; LoRA's is {sci_text(lora, 3)}."
    diverged = [names[v] for v, f in finals.items() if not math.isfinite(f)]
    if diverged:
        head += (f" {', '.join(diverged)} did not reach a finite loss: the learning rate is too large for "
                 f"{'them' if len(diverged) > 1 else 'it'}" + (", or W_Q + s·A_Q·B_Q has a zero column, which DoRA "
                 "divides by" if "DoRA" in diverged else "") + ".")
    if steps < asked:
        head += f" (At these sizes the runs stop at {steps:,} of the {asked:,} steps asked for, to answer in seconds.)"
    return head + (" This is one small task with one seed: each variant's paper measures it on real models and "
                   "their own benchmarks, and which one wins depends on the task.")


SIZES_NOTE = ("Trained numbers here are at {d}×{k} with r = {r}. The other columns are for one {D}×{K} projection at "
              "r = {R}, the size of a 7B model's attention. The frozen base is in 16 bits, and QLoRA's in NF4 with its "
              "absmax constants. The adapter is saved in float32, as PEFT saves a trained adapter. VeRA's file holds "
              "its random A and B as well, unless it regenerates them from the seed (PEFT's `save_projection=False`).")


def pair_sentence(names: dict, variant: str, finals: dict, steps: int) -> str:
    """One variant's final loss against LoRA's, from the same run of the comparison."""
    mine, lora = finals[variant], finals["lora"]
    if not (math.isfinite(mine) and math.isfinite(lora)):
        which = names[variant] if not math.isfinite(mine) else "LoRA"
        return f"After {steps:,} steps {which} has not reached a finite loss: lower the learning rate."
    if mine == lora:
        return f"After {steps:,} steps both reach the same loss, {sci_text(mine, 3)}."
    lower, higher = (variant, "lora") if mine < lora else ("lora", variant)
    ratio = finals[higher] / finals[lower] if finals[lower] > 0 else math.inf
    return (f"After {steps:,} steps {names[variant]}'s loss is {sci_text(mine, 3)} and LoRA's {sci_text(lora, 3)}: "
            f"{names[lower]}'s is {sci_text(ratio, 3)}× lower, on this task.")
