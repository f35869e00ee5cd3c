"""Which GPU: the memory one training step needs for full fine-tuning, LoRA over a 16-bit base and QLoRA over NF4.

What is counted, in bytes, for a model of P parameters with L adapter numbers (lora_core.scale counts both):

- **full fine-tuning**, as the QLoRA paper counts it: 16-bit weights (2) and gradients (2) and AdamW's two 32-bit
  states (8), 12 bytes a parameter. (Scale's other table also keeps a 32-bit master copy: 16.)
- **LoRA over a 16-bit base**: the frozen base at 2 bytes a parameter; each adapter number as the QLoRA paper
  trains it, a 16-bit weight and gradient and two 32-bit states: 12 bytes, the paper's own accounting for a
  trained number. (PEFT keeps a trained adapter over a 16-bit base in float32 unless told otherwise,
  ``autocast_adapter_dtype``: 4 bytes more an adapter number.)
- **QLoRA over an NF4 base**: the weights of the transformer blocks' linear layers in NF4 (4.5 bits a weight,
  4.127 with double quantization, :mod:`lora_core.nf4`); embeddings, the output head, norms and biases stay in
  16 bits, as bitsandbytes quantizes only linear layers; adapters as LoRA's.
- **activations**, for a batch of b sequences of s tokens, 16-bit, per transformer layer of width h with a heads
  (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models", section 4.1):
  s·b·h·(34 + 5·a·s/h) bytes kept for the backward pass. With gradient checkpointing a layer keeps only its
  16-bit input (2·s·b·h) and one layer's activations exist at a time, while it is recomputed. The output
  head's logits and their gradient are float32: 8·b·s·V for a vocabulary of V.
- a fixed **reserve** for the CUDA context and the allocator's slack (CUDA_RESERVE).

This is an estimate of the peak, not a measurement: it leaves out fragmentation and temporary buffers, and
attention kernels that never store the s×s scores (FlashAttention) save the 5·a·s/h term.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from .checks import is_whole, positive_int
from .nf4 import BLOCKSIZE, nf4_bits_per_weight
from .scale import TARGETS, adapted_matrices, count_lora_params, get_model

FULL_BYTES = 2 + 2 + 8          # 16-bit weight and gradient, two 32-bit AdamW states
BASE_BYTES = 2                  # a frozen 16-bit weight
ADAPTER_BYTES = 2 + 2 + 8       # a trained adapter number, counted as the paper counts a trained number
CUDA_RESERVE = 0.5e9            # the CUDA context and the allocator's slack, a round figure (measure on a card)
METHODS = ("full", "lora", "qlora")
METHOD_NAMES = {"full": "full fine-tuning", "lora": "LoRA, 16-bit base", "qlora": "QLoRA, NF4 base"}


class Card(NamedTuple):
    key: str
    name: str
    memory: float   # bytes (GB as sold: 10⁹)


CARDS = (
    Card("8gb", "8 GB card (RTX 3070, 4060)", 8e9),
    Card("t4", "T4 16 GB", 16e9),
    Card("a10", "A10 24 GB", 24e9),
    Card("l4", "L4 24 GB", 24e9),
    Card("a100-40", "A100 40 GB", 40e9),
    Card("48gb", "48 GB card (RTX A6000, L40S)", 48e9),
    Card("a100-80", "A100 80 GB", 80e9),
    Card("h100", "H100 80 GB", 80e9),
)


class Workload(NamedTuple):
    """What the activations depend on: b sequences of s tokens, with or without gradient checkpointing."""
    seq: int = 512
    batch: int = 1
    checkpointing: bool = True


DEFAULT_WORKLOAD = Workload()


class MethodMemory(NamedTuple):
    weights: float          # the model's weights as stored for training (NF4 and 16-bit parts for QLoRA)
    adapter: float          # adapter numbers with their gradients and AdamW states (0 for full fine-tuning)
    gradients: float        # full fine-tuning's 16-bit gradients
    optimizer: float        # full fine-tuning's AdamW states
    activations: float
    reserve: float

    @property
    def total(self) -> float:
        return self.weights + self.adapter + self.gradients + self.optimizer + self.activations + self.reserve


class GpuEstimate(NamedTuple):
    model: str
    params: int             # the base model's parameters
    adapter_params: int     # at the chosen targets and r
    quantized: int          # the weights QLoRA stores in NF4 (the blocks' linear layers)
    methods: dict           # "full" | "lora" | "qlora" → MethodMemory
    workload: Workload


def check_workload(w: Workload) -> None:
    for name, v in (("sequence length", w.seq), ("batch size", w.batch)):
        positive_int(name, v)
    if not isinstance(w.checkpointing, bool):
        raise ValueError(f"gradient checkpointing must be True or False, got {w.checkpointing!r}")


def quantized_params(model: str) -> int:
    """The weights of every linear layer in the transformer blocks: what bitsandbytes stores in NF4."""
    return sum(m.d_in * m.d_out * m.copies for m in adapted_matrices(model, TARGETS))


def activation_bytes(model: str, w: Workload) -> float:
    """The activations kept for the backward pass, and the float32 logits with their gradient (module docstring)."""
    check_workload(w)
    spec = get_model(model)
    s, b, h, a = w.seq, w.batch, spec.hidden, spec.heads
    layer = s * b * h * (34 + 5 * a * s / h)
    layers = spec.attention_blocks
    kept = layers * 2 * s * b * h + layer if w.checkpointing else layers * layer
    return kept + 8 * b * s * spec.vocab


def gpu_estimate(model: str, targets, r: int, workload: Workload = DEFAULT_WORKLOAD, *,
                 double_quant: bool = True) -> GpuEstimate:
    """The three methods' memory for one training step of ``model`` with LoRA at ``targets`` and rank ``r``."""
    check_workload(workload)
    if not is_whole(r, 1, 1 << 16):
        raise ValueError(f"rank r = {r!r} must be a whole number from 1")
    spec = get_model(model)
    P = spec.base_params
    L = count_lora_params(model, targets, r)
    Q = quantized_params(model)
    act = activation_bytes(model, workload)
    nf4 = nf4_bits_per_weight(BLOCKSIZE, double_quant) / 8
    methods = {
        "full": MethodMemory(2 * P, 0, 2 * P, 8 * P, act, CUDA_RESERVE),
        "lora": MethodMemory(BASE_BYTES * P, ADAPTER_BYTES * L, 0, 0, act, CUDA_RESERVE),
        "qlora": MethodMemory(nf4 * Q + BASE_BYTES * (P - Q), ADAPTER_BYTES * L, 0, 0, act, CUDA_RESERVE),
    }
    return GpuEstimate(model, P, L, Q, methods, workload)


def fits(total: float, card: Card) -> bool:
    return total <= card.memory


def largest_fitting(models, card: Card, method: str, targets, r: int, workload: Workload = DEFAULT_WORKLOAD,
                    double_quant: bool = True) -> str | None:
    """Of ``models``, the one with the most parameters whose ``method`` fits ``card``; None if none does."""
    best = None
    for model in models:
        est = gpu_estimate(model, targets, r, workload, double_quant=double_quant)
        if fits(est.methods[method].total, card) and (best is None or est.params > get_model(best).base_params):
            best = model
    return best


def gigabytes(n: float) -> float:
    """Bytes in GB as cards are sold (10⁹), rounded up to the tenth so a total is never shown smaller than it is."""
    return math.ceil(n / 1e8) / 10
