"""The app's own explanatory text. The seed gives the facts and numbers; the words are written here."""

EXPLORE_SECTIONS = {
    "matrices": "1 · The matrices",
    "update": "2 · The update ΔW",
    "q": "3 · Q without and with LoRA",
    "cell": "4 · One cell of Q",
    "count": "5 · Why it works: the count",
}

EXPLORE_INTRO = """
A transformer's attention turns each token's vector (a row of **X**) into a query with one matrix
multiplication, **Q = X·W_Q**. Fine-tuning would change every number in W_Q. LoRA leaves W_Q
exactly as it was (**frozen**) and learns a correction built from two thin matrices, **A_Q**
(d×r) and **B_Q** (r×k). Their product has the shape of W_Q but at most rank r, and it is added
to the frozen weight, scaled by s = α/r.
"""

EQUATION = r"Q = X\,(W_Q + s\,A_Q B_Q) = \underbrace{X W_Q}_{\text{frozen model}} + \underbrace{s\,(X A_Q)\,B_Q}_{\text{the adapter}}"

MATRICES_NOTE = """
Grey dashed frames are frozen, orange frames are trained. Blue is negative, red positive, white zero;
matrices side by side share one colour range, so the same colour means the same value.
"""

DELTA_NOTE = """
ΔW_Q = s·A_Q·B_Q has the full d×k shape of W_Q, but it is built from only r·(d + k) numbers,
so its rank is at most r. Merged into W_Q, it costs nothing extra when the model runs. The colour
range covers every r the slider offers, so moving r recolours a cell only where its number moves.
"""

Q_NOTE = """
The adapter shifts every query by ΔQ = s·X·A_Q·B_Q. With the PEFT default (B_Q = 0) it starts at
zero: the adapted model begins exactly where the pre-trained one stands. Click a cell of Q to open
its breakdown, term by term.
"""

BREAKDOWN_NOTE = """
Each entry of Q is a sum of two dot products. The frozen path multiplies a row of X with a column
of W_Q. The adapter first squeezes the same row through A_Q into just r numbers, then expands
them with a column of B_Q.
"""

WHY_INTRO = """
Most of what a pre-trained model knows already sits in its weights; adapting it to a new task
needs a small, structured change rather than a new matrix. LoRA bets that this change has low
rank, and pays for it in r·(d + k) numbers instead of d·k.
"""

# the presets' names in the sidebar and on the slides
PRESET_LABELS = {
    "seed": "the blog's example",
    "random": "random numbers",
    "peft": "PEFT default (B = 0)",
    "gaussian": "Gaussian A, B = 0",
}


def counts_sentence(cfg, c) -> str:
    """The count at the current size (``cfg`` an ExploreConfig, ``c`` its ParamCounts), with the break-even rank when LoRA is no smaller."""
    if c.lora_is_smaller:
        return (f"At the current size, {cfg.d}×{cfg.k} with r = {cfg.r}, LoRA trains **{c.lora:,}** numbers instead "
                f"of **{c.full:,}**: {c.lora / c.full:.1%} of full fine-tuning.")
    return (f"At the current size, {cfg.d}×{cfg.k} with r = {cfg.r}, LoRA trains **{c.lora:,}** numbers, "
            f"not fewer than full fine-tuning's **{c.full:,}**: r is at or above the break-even rank "
            f"{c.break_even:.3g}. Make d and k larger, or r smaller, to see the saving.")
