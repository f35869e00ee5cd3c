"""Words for the slides: short, large, and in the order of the lesson."""

WHAT = """
- A transformer turns every token into a **query** with one matrix: **Q = X·W_Q**.
- Fine-tuning would rewrite all of W_Q. LoRA **freezes** it.
- Beside it, LoRA learns two thin matrices, **A_Q** (d×r) and **B_Q** (r×k), whose product is the change.
"""

EQUATION = """
The adapter's product has W_Q's shape, is scaled by **s = α/r**, and is added to the frozen weight.
Move r and watch A_Q grow a column while the blog's numbers stay where they were.
"""

WHY = """
- Pre-trained weights already hold what the model knows; a new task needs a **small, structured** change.
- LoRA bets that this change has **low rank**, and pays r·(d + k) numbers for it instead of d·k.
- The catch in the blog's own example: at 5×3, r = 2 costs **16** numbers against **15**. LoRA only wins
  for r below d·k/(d + k), which is tiny for a 5×3 matrix and huge for a real one.
"""

MATRICES = "The example from the blog post, exactly. Grey dashes: frozen. Orange: trained."

COMPARE = """
Same X, same frozen W_Q: the only difference is the adapter's term s·X·A_Q·B_Q.
With PEFT's default (B_Q = 0) the two are identical until training starts.
"""

FORWARD = "Step 1 of training: Q is computed with the adapter in place and compared with a target T."

BACKWARD = """
The gradient reaches A_Q and B_Q. W_Q has none: it is frozen. It still passes the gradient *through*
to the layer's input, which is how earlier layers keep learning.
"""

ADAMW = """
AdamW updates **only A_Q and B_Q**: decay, running averages m and v, bias correction, one step of
about lr per number. The loss falls; W_Q never changes.
"""

WHERE = """
LoRA can sit on any linear map. The usual choice is attention's W_Q and W_V (the paper's), often
W_K and W_O too; the feed-forward block is optional; the embeddings stay frozen. Below: the attention
of the current example, without and with adapters on W_Q and W_V.
"""

MATTERS = """
At real sizes the saving is enormous: the numbers below are computed for {model} with r = {r} on
W_Q and W_V, not quoted.
"""

REAL = """
A small transformer, pre-trained to **sort** eight digits, learns a new task: **{task}** ({what}). LoRA
sits on {placement}; every pre-trained weight stays frozen. Dotted: full fine-tuning, which trains them all.
"""

REAL_FULL = """
A small transformer, pre-trained to **sort** eight digits, learns a new task: **{task}** ({what}). The Real
model page is set to full fine-tuning, so every weight trains and there is no adapter.
"""

REAL_GRID = """
Which matrices should LoRA adapt when the number of trained values is fixed? The LoRA paper's Table 5,
rerun on this model: each placement trains {budget:,} numbers (the FFN the nearest whole r), on both new tasks.
"""

REAL_RANK = """
How small can r be? The paper's Table 6, rerun on this model: LoRA on {placement} at r = {ranks}, with α
fixed, on both new tasks; the dashed lines are full fine-tuning.
"""

REAL_PHI = """
Do two adapters learn the same directions? Two runs on this model, one per task (Q and V in both layers, r = 4):
the LoRA paper's φ(A₁, A₂, i, j), how much of one run's top i input directions lie in the other's top j, for {module}.
"""

NO_PHI_SENTENCE = "The comparison's findings, in words, are on the Adapters page."
NO_SEQUENCE = "The answers on the typed sequence are on the Real model page."
NO_CURVES = "This run's loss and accuracy curves are on the Real model page."
NO_GRID_SENTENCE = "The grid's findings, in words, are on the Real model page."
NO_SWEEP_SENTENCE = "The sweep's findings, in words, are on the Real model page."
NO_INTRO = "This slide's opening words are on the Real model page."
NO_FIGURE = "The figure is on the Real model page: no room for it on this screen."


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def real_sentence(steps: int, lora: tuple[float, int, int] | None, full: tuple[float, int] | None) -> str:
    """The run's numbers in a sentence. ``lora``: (held-out accuracy, trained numbers, numbers in the model);
    ``full``: (full fine-tuning's accuracy, its trained numbers)."""
    parts = []
    if lora is not None:
        acc, trained, total = lora
        parts.append(f"After {steps:,} steps, LoRA gets **{pct(acc)}** of held-out digits right, training "
                     f"**{trained:,}** of the model's {total:,} numbers ({trained / total:.1%}).")
    if full is not None:
        acc, trained = full
        parts.append(f"Full fine-tuning trains all **{trained:,}** and gets **{pct(acc)}**"
                     + (f" after {steps:,} steps." if lora is None else "."))
    return " ".join(parts)


def train_prompt(runs: int) -> str:
    if runs == 1:
        return "**1** run to train; the slide draws it as it goes."
    return f"**{runs}** runs to train; the slide draws them as they go."

QLORA = """
- **QLoRA** keeps A_Q and B_Q as they are and stores the **frozen** W_Q in **4 bits**.
- Each block of 64 weights keeps its largest |value| (absmax); each weight becomes one of 16 NF4 levels × absmax.
- Training sees W̃_Q, the rounded copy: the rounding error stays frozen, and A_Q·B_Q can learn around part of it.
"""

DORA = """
- **DoRA** splits each column of W_Q + s·A_Q·B_Q into a **length** m and a **direction** (a unit column).
- m starts at the columns' lengths, so DoRA starts out computing exactly what LoRA does. Then m trains beside
  A_Q and B_Q, and a step can change a column's length without turning it.
"""

GPU = """
The blog says full fine-tuning needs a large GPU and LoRA a small one. Counted for **{model}** (LoRA r = {r} on
W_Q and W_V, 512 tokens, checkpointing): {sentence}
"""
