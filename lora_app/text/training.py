"""Words for the Training page."""
from .latex import one_minus, sci_text

TRAINING_INTRO = """
Training a LoRA adapter repeats three moves. The **forward pass** computes Q with the adapter in
place. **Backpropagation** sends the loss's gradient back through that product: A_Q and B_Q
receive gradients, W_Q receives none because it is frozen, yet the gradient still flows *through*
W_Q to the layer's input. **AdamW** then moves A_Q and B_Q, and only them. Here the task is to
reach a target T, made as X·(W_Q + ΔW*) where ΔW* is a hidden update of rank r* (part 3 shows it,
and lets you type a T of your own); step through it with the buttons or the ← → keys.
"""

STAGE_TITLES = {
    "forward": "① Forward pass",
    "loss": "② Loss",
    "backward": "③ Backward pass, W_Q frozen",
    "adamw": "④ AdamW on A_Q and B_Q",
    "update": "⑤ The new A_Q, B_Q and Q",
}

STAGE_NOTES = {
    "forward": "The adapter's A_Q and B_Q as they stand before this step, merged into the frozen W_Q; "
               "Q is compared with the target T.",
    "loss": "The mean squared error over all n·k entries of Q − T, exactly `torch.nn.functional.mse_loss`.",
    "backward": "G = ∂L/∂Q is pushed back through Q = X·W_Q + s·(X·A_Q)·B_Q. Only A_Q and B_Q collect "
                "gradients; W_Q is frozen (in PyTorch, `requires_grad=False`), so no ∂L/∂W_Q is computed and W_Q "
                "never changes. ∂L/∂X is shown to make the point that the gradient still passes *through* the "
                "frozen weight to earlier layers.",
    "adamw": "torch's AdamW, stage by stage: decoupled weight decay first multiplies θ by 1 − lr·λ; m and v "
             "are running averages of the gradient and of its square; dividing by 1 − βᵗ removes their bias "
             "towards 0 in early steps. The move lr·m̂/(√v̂ + ε) divides the gradient's average by its typical "
             "size, so lr sets its size, not the gradient's scale: while a gradient g keeps its sign and size, "
             "the move's size is lr·|g|/(|g| + ε), about lr unless |g| is as small as ε, and a gradient of "
             "exactly zero moves nothing.",
    "update": "A_Q and B_Q after the step, and the Q they produce. W_Q has not changed by a single digit.",
}

INIT_LABELS = {
    "seed": "the example's A_Q and B_Q",
    "peft": "PEFT default: A_Q random, B_Q = 0",
    "gaussian": "Gaussian A_Q, B_Q = 0",
}

ZERO_B_LESSON = """
**Why B_Q starts at zero.** With B_Q = 0 the adapter adds nothing, so at step 1 Q with LoRA equals Q
without, exactly: training starts from the pre-trained model. And since ∂L/∂A_Q = s·Xᵀ·G·B_Qᵀ, the
first gradient of A_Q is exactly zero, so Adam gives A_Q no update in step 1: the gradient can move
only B_Q. Weight decay does not use the gradient: with λ > 0, AdamW still multiplies A_Q by
1 − lr·λ in step 1 (a small shrink at the usual lr·λ), and only with λ = 0 does A_Q stay exactly as it was. Once B_Q ≠ 0, ∂L/∂A_Q is no
longer forced to zero, and A_Q learns too.
"""


def zero_b_lesson(lr: float, wd: float) -> str:
    """ZERO_B_LESSON and this run's own factor."""
    if wd == 0:
        return ZERO_B_LESSON + "\nHere λ = 0: A_Q does not change at all in step 1.\n"
    return ZERO_B_LESSON + (f"\nHere lr·λ = {sci_text(lr * wd)}, so the factor is 1 − lr·λ = {one_minus(lr * wd)}.\n")


def zero_b_first_step(lr: float, wd: float, grad_b_zero: bool, a_change: float) -> str:
    """Step 1 of a run whose B_Q starts at zero, with its numbers; true for every λ.

    ``a_change`` is the largest change of an entry of A_Q in step 1, measured on the run.
    """
    learns = ("∂L/∂B_Q is zero too (Q already equals T), so the gradient moves nothing in step 1."
              if grad_b_zero else "The gradient moves only B_Q in step 1.")
    if wd == 0:
        return (f"{learns} With λ = 0 there is no weight decay either, so A_Q stays exactly as it was "
                f"(largest change: {sci_text(a_change, 3)}).")
    return (f"{learns} Weight decay does not use the gradient: AdamW first multiplies A_Q by "
            f"1 − lr·λ = {one_minus(lr * wd)}, so A_Q still moves, by at most {sci_text(a_change, 3)} here "
            "(each entry by lr·λ times its own size).")


RANK_LESSON = """
The hidden update ΔW* has rank r* = {rstar}; the adapter has rank r = {r}. {verdict}
"""

SECTIONS = {
    "step": "1 · One step, stage by stage",
    "loss": "2 · The loss over the run",
    "task": "3 · The task: ΔW* and T",
}

TASK_NOTE = """
The task is made so that its answer is known: a hidden update ΔW* of rank r* = {rstar} is added to the
frozen W_Q, and the target T is what the model would output with it, X·(W_Q + ΔW*), until you edit T
below. Training never sees ΔW*, only X, the frozen W_Q and T; LoRA looks for an s·A_Q·B_Q that brings Q
as close to T as rank r allows.
"""
