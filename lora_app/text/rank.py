"""Words of the Rank page. Facts from REFERENCE.md and the LoRA paper; the sentences are ours."""

INTRO = """
LoRA's update ΔW = s·A·B has the full d×k shape of W, but it passes through only r numbers in the
middle (A is d×r, B is r×k). So it can point in at most r independent directions: its **rank** is
at most r. This page shows that limit in the singular values, what it costs when the update we
want has a higher rank, and what it saves.
"""

SPECTRUM_NOTE = """
The singular values σ₁ ≥ σ₂ ≥ … measure how much of the matrix lies along each independent
direction; the rank is how many of them are not zero. The axis is logarithmic, so values that
are zero up to rounding (about 10⁻¹⁶ of σ₁) still show as short bars. Move **r** in the sidebar:
one more bar rises above the line with every step.
"""

TARGET_NOTE = """
Suppose fine-tuning wants a full-rank update ΔW*. A rank-r adapter cannot reproduce it; the best
it can do is the **truncated SVD**: keep the r largest singular values and their directions, drop
the rest. No other rank-r matrix comes closer (the Eckart–Young theorem), and the error left over
is set by the dropped singular values alone. LoRA bets that real updates are like the fast-decaying
case: most of their energy sits in a few directions.
"""

DECAY_HELP = ("ΔW*'s singular values are σᵢ = i^−decay: 0 gives a flat spectrum that no low rank "
              "captures; larger values put the energy in the first few directions.")

EDIT_NOTE = """
Change any cell of ΔW*: the approximation, the spectrum and the error curve follow. Edits are
dropped when d, k, the seed or the decay change, because they start a new ΔW*.
"""

COUNT_NOTE = """
A and B hold r·(d + k) numbers; full fine-tuning of W trains all d·k. The two lines cross at the
break-even rank d·k/(d + k): below it LoRA trains fewer numbers. For the blog's 5×3 matrix that is
1.875, so r = 2 trains more (16 against 15). For a 4096×4096 projection it is 2048, far above the
ranks people use.
"""


_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def sigma_name(i: int) -> str:
    """σ with a subscript index, as on the board: sigma_name(3) == "σ₃"."""
    return "σ" + str(i).translate(_SUBSCRIPTS)


def spectrum_sentence(sigma, rank: int, r: int, d: int, k: int) -> str:
    """What the bars of ΔW's spectrum say, with the numbers."""
    if sigma[0] == 0:
        return (f"ΔW is {d}×{k} and exactly zero: B starts at zero, so every singular value is 0 and the rank "
                "is 0. Training gives it a rank of at most r.")
    head = (f"ΔW is {d}×{k}, so it has {min(d, k)} singular values. Counting those above the rounding line gives "
            f"**rank {rank}**, never more than r = {r}")
    if r >= min(d, k):
        return head + ": here r = min(d, k), so every direction is within reach."
    return head + f"; the largest beyond r is {sigma_name(r + 1)} = {sigma[r]:.1e}, against σ₁ = {sigma[0]:.3g}."

SECTIONS = {
    "spectrum": "1 · The rank of ΔW = s·A·B",
    "copy": "2 · ΔW* and its best rank-r copy",
    "error": "3 · What rank r leaves out",
    "cost": "4 · What a rank costs",
}
