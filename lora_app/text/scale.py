"""Words of the Scale page. Facts from the LoRA paper, REFERENCE.md and the seed; the sentences are ours."""

INTRO = """
On the blog's 5×3 matrix LoRA trains more numbers than it saves. Real models have projections of
768×768 to 12,288×12,288, repeated in every layer, and there the count r·(d + k) is tiny next to
d·k. Pick a model, the matrices to adapt and the rank: every number below is computed from the
model's dimensions.
"""

TARGET_LABELS = {"q": "W_Q", "k": "W_K", "v": "W_V", "o": "W_O", "ffn": "FFN"}

RANK_HELP = ("This page's own rank: the sidebar's r belongs to the small example and cannot exceed its d and k. "
             "The paper used r = 1 to 64; 4 and 8 are common.")

FUSED_NOTE = """
GPT-2 keeps W_Q, W_K and W_V in one d×3d matrix (`c_attn`). PEFT adapts whole modules, so adapting
any of q, k, v adapts all three at once, with r·(d + 3d) numbers.
"""

NO_TARGETS = "No matrix is adapted: tick at least one target to train anything."

MEMORY_NOTE = """
Memory for training, without activations (they depend on the batch and the sequence length).
Weights are held in fp16 as in the paper. Only what is trained needs a gradient (fp16), an fp32
master copy and AdamW's two fp32 states: 16 bytes per trained parameter. Full fine-tuning pays
that for every parameter, LoRA only for A and B, plus 2 bytes for each frozen weight.
"""

PAPER_INTRO = """
The LoRA paper (Hu et al., 2021) states these figures. The app computes each one from the model's
dimensions with the same formula as above, live; the tests check the formula against PEFT on the
real architectures.
"""

PAPER_NOTES = """
- The adapter of r = 4 on q and v holds 18,874,368 numbers, 37.7 MB in fp16 (36.0 MiB); the paper rounds this to "35 MB".
- For full fine-tuning of GPT-3 the paper reports 1.2 TB without giving its accounting; counting 16 bytes per parameter
  for mixed-precision AdamW, as here, gives 2.79 TB. The LoRA figure of 350 GB agrees either way: it is
  almost all frozen fp16 weights.
- The paper's figures for GPT-2 medium and large do not follow its own formula, a known erratum; the formula
  gives 0.39M and 0.74M at r = 4 on q and v (choose GPT-2 medium or large above).
"""

BENCH_INTRO = """
One training step of a single d×k linear layer on n tokens: forward, mean-squared-error backward and
an AdamW update. Full fine-tuning trains W; LoRA freezes W and trains A (d×r) and B (r×k). Nothing
is quoted: the times and bytes come from running it now, on this machine's device.
"""

BENCH_CANCEL = "Changing any control, or pressing Cancel, stops a measurement in progress."

BENCH_CAVEAT = """
In one layer whose input needs no gradient, LoRA skips the d×k weight gradient altogether, so the
speed-up here is large. In a deep model the backward pass must still carry gradients through
every frozen W to reach the layers below, which costs as much as before: the paper measured a 25%
faster training for GPT-3, not several times. The memory and storage savings carry over in full.
"""
