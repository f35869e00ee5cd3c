"""Words of the Attention page. Facts from the seed and REFERENCE.md; the sentences are ours."""

INTRO = """
The Explore page followed one matrix, W_Q. A real attention layer has four: **W_Q**, **W_K** and
**W_V** turn every token into a query, a key and a value, and **W_O** mixes the heads' results back
to the model's width. After attention comes the feed-forward block (FFN). Each of these matrices
can carry its own LoRA adapter; tick the ones to adapt. The embeddings are left frozen.
"""

PROJECTION_EQUATION = (r"Q = X\,(W_Q + s\,A_Q B_Q),\quad K = X\,(W_K + s\,A_K B_K),\quad "
                       r"V = X\,(W_V + s\,A_V B_V)")

HEAD_EQUATION = (r"\text{head}_h = \operatorname{softmax}\!\Big(\frac{Q_h K_h^{\top}}{\sqrt{d_k}}\Big)\, V_h,"
                 r"\qquad \text{out} = [\,\text{head}_1 \cdots \text{head}_H\,]\,(W_O + s\,A_O B_O)")

SETUP_NOTE = """
X is the sidebar's example (the blog's X by default). Each head is k wide, so d_k = k, and head 1
uses the Explore page's W_Q, A_Q and B_Q: its Q is exactly that page's Q. The other matrices are
seeded from the sidebar's seed. Every adapter has rank r and the scale s of the sidebar.
"""

PROJECTIONS_NOTE = """
Each token (a row of X) becomes a query, a key and a value: three rows of the same length d_k.
With an adapter on a projection, these rows are computed with W + s·A·B instead of W.
"""

SCORES_NOTE = """
Score (i, j) is the dot product of query i with key j, divided by √d_k so that wider heads do not
give larger scores. Softmax turns each row into weights that are positive and sum to 1: how much
token i takes from each token j.
"""

CAUSAL_NOTE = "The causal mask hides later tokens: their scores are −∞ (blank cells) and their weights 0."

OUTPUT_NOTE = """
Each token's result is the weighted average of the value rows. The heads' results are laid side by
side and multiplied by the frozen W_O, which brings them back to the model's width d.
"""

CHANGE_NOTE = """
LoRA on W_Q or W_K changes the scores, and so **where** each token looks: the attention weights
move. LoRA on W_V or W_O leaves these weights exactly as they were; part 5 shows what it changes
instead. With B = 0 (the PEFT presets) every difference is exactly zero until training moves B.
"""

OUTPUT_CHANGE_NOTE = """
LoRA on W_V or W_O changes **what** is read from each token, so the layer's output moves even when
the weights of part 4 stay put; LoRA on W_Q or W_K moves it through the weights. Without LoRA is the
frozen model, the same for every r.
"""

FFN_NOTE = """
The FFN comes after attention, so an adapter there cannot change these maps; it shows up only in
the count of part 6.
"""

TABLE_NOTE = """
One layer of this small model. Frozen matrices are kept as they are; each adapted d_in×d_out matrix
adds r·(d_in + d_out) trained numbers, A and B. The token embedding is frozen under LoRA; its
50,257 rows are GPT-2's vocabulary, listed to show how much of a model is never touched.
"""

SECTIONS = {
    "qkv": "1 · Queries, keys and values",
    "scores": "2 · Scores and weights",
    "output": "3 · The output",
    "change": "4 · How the weights change",
    "out_change": "5 · How the output changes",
    "count": "6 · What is trained",
}
