"""Words for the Training page."""

TRAINING_INTRO = """
Training a LoRA adapter repeats three moves. The **forward pass** computes Q with the adapter in
place. **Backpropagation** sends the loss's gradient back through that product: A_Q and B_Q
receive gradients, W_Q receives none because it is frozen, yet the gradient still flows *through*
W_Q to the layer's input. **AdamW** then moves A_Q and B_Q, and only them. Here the task is to
reach a target T = X·(W_Q + ΔW*), where ΔW* is a hidden update of rank r*; step through it with
the buttons or the ← → keys.
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
                "gradients; W_Q has `requires_grad=False`, so ∂L/∂W_Q does not exist. ∂L/∂X is shown to make "
                "the point that the gradient still passes *through* the frozen weight to earlier layers.",
    "adamw": "torch's AdamW, stage by stage: decoupled weight decay shrinks θ first; m and v are running "
             "averages of the gradient and of its square; dividing by 1 − βᵗ removes their bias towards 0 in "
             "early steps; each number then moves by about lr, whatever its gradient's scale.",
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
first gradient of A_Q is exactly zero: only B_Q moves in the first step, and A_Q follows from step 2.
"""

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
frozen W_Q, and the target is what the model would output with it, T = X·(W_Q + ΔW*). Training only
sees X and T; LoRA has to find an A_Q·B_Q that does the same job.
"""
