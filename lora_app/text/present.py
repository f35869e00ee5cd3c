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
