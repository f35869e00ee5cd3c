"""Words of the Adapters page, and the sentences it builds from an adapter's numbers. The sentences are ours."""
from __future__ import annotations

SECTIONS = {"overview": "Overview", "module": "One module", "compare": "Compare two", "merge": "Merge"}

INTRO = ("Bring an adapter trained with PEFT, or take a run of the Real model page: see where its update lives, how "
         "low its rank really is, how close it is to another adapter, and what each merge does to the numbers.")

SOURCES_NOTE = """
An adapter is the folder PEFT's `save_pretrained` writes: `adapter_config.json` and `adapter_model.safetensors`.
Upload it zipped, or the two files together, up to 512 MB (r = 64 on every linear layer of a 7B model in 16 bits is
about 320 MB). Only safetensors is read, never a pickle: convert an `adapter_model.bin` by loading it with PEFT and
saving it again with `save_pretrained(..., safe_serialization=True)`. Nothing you upload leaves this session.
"""

OVERVIEW_NOTE = """
Each cell is one adapted matrix: its layer (row) and its type (column). Its colour is the size of its update
ΔW = s·A·B, or its effective rank, or the share of its energy in the top k directions, each computed from A and B
without forming ΔW. Click a cell to open that module.
"""

MODULE_NOTE = """
ΔW = s·A·B has rank at most r, but how much of it lies in fewer directions is what the LoRA paper asks of its own
adapters (section 7). Its singular values come from a QR of each factor and the SVD of an r×r matrix. The
**effective rank** (Roy and Vetterli) is exp of the entropy of σᵢ/Σσ: 1 when one direction holds everything, r when
all r are equal. The **stable rank** is ‖ΔW‖²_F/σ₁².
"""

COMPARE_NOTE = """
The LoRA paper's Figure 3 asks how much of one adapter's top i directions lie in another's top j:
φ(A₁, A₂, i, j) = ‖U₁[:, :i]ᵀ·U₂[:, :j]‖²_F / min(i, j), with U the singular vectors of each A. It is 1 when one
subspace holds the other, and about max(i, j)/d for two random subspaces of the d-wide input space. The cosine of
the two ΔW says whether the updates point the same way.
"""

MERGE_NOTE = """
PEFT's `add_weighted_adapter` combines adapters in several ways, and they do not give the same matrix. Here each is
computed as PEFT computes it (the tests compare every one with PEFT), beside the exact Σ wᵢ·ΔWᵢ.
"""

HOW = {
    "linear": "scales each A and B by √|wᵢ·sᵢ| and adds them, so A·B carries cross terms Aᵢ·Bⱼ (i ≠ j) beside the "
              "wanted sum: they are drawn on their own below",
    "cat": "puts the factors side by side: A = [w₁s₁A₁, w₂s₂A₂] and B stacked, so A·B is exactly the sum, at rank "
           "r₁ + r₂",
    "svd": "forms the exact sum and keeps its top directions: the difference is what the truncation drops",
    "ties": "keeps each factor's largest entries (the density), elects a sign per entry, and averages the entries "
            "that agree with it: pruning and sign election make the difference",
    "dare_linear": "drops each factor entry with probability 1 − density and rescales the rest (a random draw from "
                   "the stated seed), then adds as linear does: dropping and the cross terms make the difference",
}


def size_text(n: int) -> str:
    """Bytes as kB below a megabyte, else MB: 12.3 kB, 81.79 MB."""
    return f"{n / 1e3:,.1f} kB" if n < 1e6 else f"{n / 1e6:,.2f} MB"


def overview_sentence(n_modules: int, trained: int, file_bytes: int, ranks: set[int], top: tuple[str, float],
                      low: tuple[str, float], median_erank: float) -> str:
    r_text = f"r = {min(ranks)}" if len(ranks) == 1 else f"r = {min(ranks)} to {max(ranks)}"
    return (f"{n_modules:,} adapted matrices at {r_text}, {trained:,} numbers in all ({size_text(file_bytes)} as "
            f"stored). The largest update is {top[0]}'s (‖ΔW‖_F = {top[1]:.4g}), the smallest {low[0]}'s "
            f"({low[1]:.4g}). The median effective rank is {median_erank:.2f}.")


def compare_sentence(n: int, mean_phi: float, best: tuple[str, float], worst: tuple[str, float],
                     mean_cos: float) -> str:
    return (f"Across the {n} module{'s' if n != 1 else ''} the two share, φ at the smaller r averages "
            f"{mean_phi:.2f}: highest in {best[0]} ({best[1]:.2f}), lowest in {worst[0]} ({worst[1]:.2f}). "
            f"The cosine of the two updates averages {mean_cos:+.2f}.")


def merge_sentence(combo: str, rel_error: float, r: int) -> str:
    if rel_error < 1e-6:
        return f"**{combo}** reproduces Σ wᵢ·ΔWᵢ exactly here (to rounding), at rank {r}."
    return (f"**{combo}** is {100 * rel_error:.1f} % off Σ wᵢ·ΔWᵢ here (‖difference‖_F over ‖Σ wᵢ·ΔWᵢ‖_F), "
            f"at rank {r}.")
