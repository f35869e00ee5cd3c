"""Words of the Scale page. Facts from the LoRA paper, REFERENCE.md and the seed; the sentences are ours."""

INTRO = """
On the blog's 5×3 matrix LoRA trains more numbers than it saves. Real models have projections of
768×768 to 12,288×12,288, repeated in every layer, and there the count r·(d + k) is tiny next to
d·k. Pick a model, the matrices to adapt and the rank: every number below is computed from the
model's dimensions.
"""

TARGET_LABELS = {"q": "W_Q", "k": "W_K", "v": "W_V", "o": "W_O", "ffn": "FFN"}

RANK_HELP = ("This page's own rank: the sidebar's r belongs to the small example and cannot exceed its d and k. "
             "The paper's GPT-3 runs use r = 1 to 64 (Table 15) and its GPT-2 study goes up to 1,024 (Table 18); "
             "its main results use 4 (GPT-2) and 8 (RoBERTa, DeBERTa, GPT-3 at 37.7M).")

FUSED_NOTE = """
GPT-2 keeps W_Q, W_K and W_V in one d×3d matrix (`c_attn`). PEFT adapts whole modules, so adapting
any of q, k, v adapts all three at once, with r·(d + 3d) numbers.
"""

NO_TARGETS = "No matrix is adapted: tick at least one target to train anything."

GPT3_NOTE = """
GPT-3's weights are not public, so this page builds GPT-3 175B as GPT-2's layout at GPT-3's size:
{total:,} parameters. The paper's Table 4 counts {paper} trainable for full fine-tuning, {more:,.1f}M
more; the paper does not say what its count includes. The share, the model file and the memory here
use this page's count.
"""

MEMORY_NOTE = """
A count, not a measurement: weights, gradients and optimizer states, without activations (they
depend on the batch and the sequence length). Each weight is held in fp16, 2 bytes; what is trained
also has a gradient (fp16), an fp32 master copy and AdamW's two fp32 states: 16 bytes per trained
parameter. Full fine-tuning pays that for every parameter, LoRA only for A and B, plus 2 bytes for
each frozen weight. The paper does not give its training precision; it measured the VRAM of GPT-3
175B, {full} for full fine-tuning and {lora} with LoRA ({ratio}), which the comparison below sets
beside this count.
"""

PAPER_INTRO = """
The LoRA paper (Hu et al., 2021, arXiv 2106.09685) states these figures. Each row gives the paper's
own conditions, in its notation (r_q = r_v = 8 is r = 8 on W_q and on W_v), beside what this app
computes under the same conditions, live. The counts use the paper's formula, r·(d_in + d_out) for
each adapted matrix (2 × matrices × d_model × r where they are square); the tests check it against
PEFT on every architecture here but GPT-3. "Agrees" is ✓ when the app's figure gives the paper's at
the digits the paper prints, ≈ where the paper itself says roughly, and ✗ otherwise, with the difference.
"""

PAPER_GROUPS = {"params": "Trainable parameters", "files": "Files: the checkpoints",
                "memory": "Training memory and speed"}

BENCH_INTRO = """
One training step of a single d×k linear layer on n tokens: forward, mean-squared-error backward and
an AdamW update. Full fine-tuning trains W; LoRA freezes W and trains A (d×r) and B (r×k). Nothing
is quoted: the times and bytes come from running it now, on this machine's device.
"""

BENCH_CANCEL = "Changing any control, or pressing Cancel, stops a measurement in progress."

BENCH_CAVEAT = """
In one layer whose input needs no gradient, LoRA skips the d×k weight gradient altogether, so the
speed-up here is large. In a deep model the backward pass must still carry gradients through every
frozen W to reach the layers below, and that part costs as much as before: the paper reports a 25%
speedup on GPT-3 175B ({lora} tokens/s per V100 GPU with LoRA against {full} with full fine-tuning),
not several times. The savings in gradients and AdamW states carry over to a deep model; its
activations, which LoRA does not shrink, come on top.
"""


GPU_INTRO = """
The blog's last table says full fine-tuning needs a large GPU (an A100) and LoRA a small one (a T4 or an A10).
Here that row is put to the test for the model, targets and rank chosen above. Each method's memory for one
training step is estimated, and each card is marked as fitting it or not. In practice, what puts a 7B or 13B
model on a 16 GB card is LoRA over a **4-bit** base: QLoRA.
"""

GPU_ASSUMPTIONS = """
**What is counted.** Full fine-tuning takes 12 bytes a parameter, as the QLoRA paper counts it: a 16-bit weight
and gradient and two 32-bit AdamW states. LoRA keeps the frozen base in 16 bits (2 bytes) and counts 12 bytes for
each adapter number. QLoRA stores the blocks' linear weights in NF4 (4.5 bits, or 4.127 with double
quantization); embeddings, the output head and norms stay in 16 bits. Activations follow Korthikanti et al.
(2022): s·b·h·(34 + 5·a·s/h) bytes a layer. With gradient checkpointing a layer keeps only its input and one
layer is recomputed at a time. The float32 logits and their gradient add 8·b·s·V. Half a GB is added for the
CUDA context. This is an estimate: fragmentation and temporary buffers are left out, and FlashAttention
saves the 5·a·s/h term. PEFT keeps adapters in float32 unless told otherwise, which adds 4 bytes an adapter number.
"""


def seed_claim_sentence(largest: dict, names: dict, t4: str, a100: str) -> str:
    """What the table says about the blog's row, from the largest model each method fits on a T4 and an A100 80 GB."""
    def name(card, method):
        key = largest[(card, method)]
        return f"**{names[key]}**" if key else "no model on this page"
    return (f"On a {t4}, plain LoRA fits up to {name('t4', 'lora')} and QLoRA up to {name('t4', 'qlora')}; "
            f"full fine-tuning fits up to {name('t4', 'full')}. On an {a100}, full fine-tuning fits up to "
            f"{name('a100-80', 'full')}, LoRA up to {name('a100-80', 'lora')} and QLoRA up to "
            f"{name('a100-80', 'qlora')}. So the blog's row holds for small models. For 7B and larger, the small "
            "card needs QLoRA, and full fine-tuning needs more than one large card.")


def paper_65b_sentence(full_gb: float, qlora_gb: float, paper_full: int, paper_qlora: int) -> str:
    """The QLoRA paper's two 65B figures as it states them, beside this page's count under its conditions."""
    def verdict(holds: bool) -> str:
        return "✓" if holds else "✗"
    return (f"**The QLoRA paper's 65B figures** (Dettmers et al. 2023): fine-tuning LLaMA-65B takes \"more than "
            f"{paper_full} GB\" of GPU memory with 16-bit weights and gradients and 32-bit Adam states, and \"under "
            f"{paper_qlora} GB\" with QLoRA, on a single 48 GB GPU. Counted here with LoRA at r = 64 on every linear "
            "layer, as in the paper, NF4 with double quantization, 512 tokens, a batch of 1 and gradient "
            f"checkpointing: full fine-tuning **{full_gb:,.1f} GB** (more than {paper_full}: "
            f"{verdict(full_gb > paper_full)}), QLoRA **{qlora_gb:,.1f} GB** (under {paper_qlora}: "
            f"{verdict(qlora_gb < paper_qlora)}).")
