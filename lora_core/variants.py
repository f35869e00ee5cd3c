"""The LoRA family on the real transformer: what each variant freezes, what it trains, and at which rates.

:func:`lora_core.finetune.finetune` asks :func:`variant_start` for a run's start, whatever the variant:

- the frozen model it trains on: the base itself; for QLoRA a copy whose linear layers hold their weights in
  NF4 (:class:`NF4Linear`, dequantized one layer at a time, as bitsandbytes does); for PiSSA a copy whose
  adapted layers hold the residual W − s·A₀·B₀ (:mod:`lora_core.pissa`);
- the tensors that train, each with its learning-rate factor (LoRA+ gives B λ times A's rate);
- how they become each layer's (A, B) pair and DoRA magnitude (VeRA: A·diag(d) and B·diag(b), with A and B
  PEFT's frozen random projections, shared by every layer).

The model's own tensors are never written.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from .dora import column_norms
from .loraplus import RATIO
from .nf4 import BLOCKSIZE, nf4_levels, nf4_quantize
from .pissa import pissa_init
from .tiny import ATTENTION_MODULES, FFN_MODULES, TinyTransformer
from .vera import D_INITIAL, PRNG_KEY, vera_projections, vera_vectors

VARIANTS = ("lora", "dora", "qlora", "pissa", "loraplus", "vera")
VARIANT_NAMES = {"lora": "LoRA", "dora": "DoRA", "qlora": "QLoRA", "pissa": "PiSSA", "loraplus": "LoRA+",
                 "vera": "VeRA"}
LORAPLUS_RATIO = RATIO   # λ on the real model: the paper's 16, the value PEFT's documentation passes


# --- QLoRA's frozen base: NF4 codes, two to a byte, and one absmax per block -------------------------

class _NF4MatMul(torch.autograd.Function):
    """h·W̃ that saves the packed codes, not W̃, for the backward pass, and dequantizes again there
    (bitsandbytes' ``MatMul4Bit`` does the same): the full-precision weight never stays in memory."""

    @staticmethod
    def forward(ctx, h, packed, absmax, layer):
        ctx.layer = layer
        ctx.save_for_backward(packed, absmax)
        return h @ layer.dequantize(packed, absmax, h.dtype)

    @staticmethod
    def backward(ctx, grad):
        packed, absmax = ctx.saved_tensors
        return grad @ ctx.layer.dequantize(packed, absmax, grad.dtype).T, None, None, None


class NF4Linear(nn.Module):
    """A bias-free linear layer whose frozen weight is stored as bitsandbytes stores it: NF4 codes of Wᵀ read row
    by row, packed two to a byte (the first in the high nibble), and a float32 absmax per block of 64."""

    def __init__(self, weight_t: torch.Tensor, blocksize: int = BLOCKSIZE):
        super().__init__()
        out_f, in_f = weight_t.shape
        q = nf4_quantize(weight_t.detach().T.to("cpu"), blocksize)
        codes = q.codes.T.reshape(-1).to(torch.uint8)       # Wᵀ's order, row by row
        if codes.numel() % 2:
            codes = torch.cat([codes, codes.new_zeros(1)])
        device = weight_t.device
        self.register_buffer("packed", (codes[0::2] << 4 | codes[1::2]).to(device))
        self.register_buffer("absmax", q.absmax.to(device))
        self.shape = (out_f, in_f)
        self.blocksize = blocksize
        self._dtype = weight_t.dtype

    def dequantize(self, packed: torch.Tensor, absmax: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """W̃ (d_in×d_out): each code's level times its block's absmax, in float32 (as bitsandbytes), then ``dtype``."""
        out_f, in_f = self.shape
        codes = torch.stack([packed >> 4, packed & 15], dim=1).reshape(-1)[: out_f * in_f].long()
        block = torch.arange(out_f * in_f, device=packed.device) // self.blocksize
        values = nf4_levels().to(packed.device)[codes] * absmax[block]
        return values.view(out_f, in_f).T.to(dtype)

    @property
    def weight(self) -> torch.Tensor:
        """Wᵀ dequantized (out×in, like ``nn.Linear.weight``), so that ``TinyTransformer.weight`` reads W̃."""
        return self.dequantize(self.packed, self.absmax, self._dtype).T

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return _NF4MatMul.apply(h, self.packed, self.absmax, self)


def quantized_base(base: TinyTransformer) -> TinyTransformer:
    """A copy of ``base`` with every block's linear layer in NF4, as PEFT's QLoRA loads a model: the embeddings,
    layer norms and the output layer (lm_head, which transformers keeps unquantized) stay as they are."""
    model = copy.deepcopy(base).requires_grad_(False)
    for block in model.layers:
        for m in (*ATTENTION_MODULES, *FFN_MODULES):
            setattr(block, m, NF4Linear(getattr(block, m).weight))
    return model


def stored_bytes(model: nn.Module) -> int:
    """The bytes a model's tensors take as stored: every parameter and buffer, each storage once."""
    seen = {}
    for t in (*model.parameters(), *model.buffers()):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(seen.values())


def pissa_base(base: TinyTransformer, names: Sequence[str], r: int, scaling: float) -> tuple[TinyTransformer, dict]:
    """A copy of ``base`` whose named layers hold PiSSA's residual W − s·A₀·B₀, and each layer's (A₀, B₀)."""
    model, pairs = copy.deepcopy(base).requires_grad_(False), {}
    for n in names:
        init = pissa_init(base.weight(n).detach(), r, scaling)
        pairs[n] = (init.A, init.B)
        with torch.no_grad():
            model.get_submodule(n).weight.copy_(init.W_res.T)
    return model, pairs


def frozen_model(base: TinyTransformer, variant: str, names: Sequence[str], r: int, scaling: float) -> TinyTransformer:
    """The frozen model a variant's adapters sit on: the base itself, its NF4 copy (QLoRA) or its residual (PiSSA)."""
    if variant == "qlora":
        return quantized_base(base)
    if variant == "pissa":
        return pissa_base(base, names, r, scaling)[0]
    return base


# --- the start of a run ----------------------------------------------------------------------------

class VariantStart(NamedTuple):
    model: TinyTransformer                     # the frozen model the run trains on
    names: tuple[str, ...]                     # the adapted layers
    params: list[torch.Tensor]                 # what trains, in the order AdamW steps them
    lr_factors: tuple[float, ...]              # each param's learning rate over the run's
    projections: dict                          # VeRA: name → (A d_in×r, B r×d_out), frozen; empty otherwise
    scaling: float                             # s: α/r (α/√r with rsLoRA); VeRA has none (1)


def vera_layer_projections(names: Sequence[str], shapes: Sequence[tuple[int, int]], r: int, dtype, device) -> dict:
    """PEFT's shared vera_A and vera_B, sized for the widest input and output, each layer's top-left block."""
    A, B = vera_projections(max(d for d, _ in shapes), max(k for _, k in shapes), r, PRNG_KEY)
    return {n: (A[:d].to(device, dtype), B[:, :k].to(device, dtype)) for n, (d, k) in zip(names, shapes)}


def variant_start(base: TinyTransformer, variant: str, names: tuple[str, ...], starts: dict, *, r: int,
                  scaling: float) -> VariantStart:
    """The frozen model and the trained tensors at step 0 (each ``requires_grad``), on the base's device and dtype.

    ``starts`` holds PEFT's default (A, B) per layer (A kaiming-uniform, B = 0): LoRA, DoRA, QLoRA and LoRA+
    start there; PiSSA replaces it with W's principal part; VeRA trains d = 0.1 and b = 0 instead.
    """
    if variant not in VARIANTS:
        raise ValueError(f"{variant!r} is not a variant; choose from {', '.join(VARIANTS)}")
    device, dtype = base.embed.weight.device, base.embed.weight.dtype
    model, projections = base, {}
    if variant == "vera":
        shapes = [tuple(base.weight(n).shape) for n in names]
        projections = vera_layer_projections(names, shapes, r, dtype, device)
        params = [t.to(device) for _, k in shapes for t in vera_vectors(r, k, D_INITIAL, dtype)]
        return VariantStart(model, names, [p.requires_grad_(True) for p in params], (1.0,) * len(params),
                            projections, 1.0)
    pairs = {n: (A.to(device, dtype), B.to(device, dtype)) for n, (A, B) in starts.items()}
    if variant == "qlora":
        model = quantized_base(base)
    elif variant == "pissa":
        model, pairs = pissa_base(base, names, r, scaling)
    params = [t.clone().requires_grad_(True) for n in names for t in pairs[n]]
    factors = [1.0, LORAPLUS_RATIO if variant == "loraplus" else 1.0] * len(names)
    if variant == "dora":  # m starts at ‖W + s·A·B‖ per output column (‖W‖, as B = 0), after every A and B
        params += [column_norms(base.weight(n).detach(), *pairs[n], scaling).requires_grad_(True) for n in names]
        factors += [1.0] * len(names)
    return VariantStart(model, names, params, tuple(factors), projections, scaling)


def layer_args(start: VariantStart, params: Sequence[torch.Tensor]) -> tuple[dict, dict]:
    """Each adapted layer's (A, B) pair and DoRA magnitude (``{}`` for the others), from the trained ``params``."""
    names = start.names
    if start.projections:  # VeRA: ΔW = A·diag(d)·B·diag(b), as the pair (A·diag(d), B·diag(b)) at s = 1
        return ({n: (start.projections[n][0] * params[2 * i], start.projections[n][1] * params[2 * i + 1])
                 for i, n in enumerate(names)}, {})
    pairs = {n: (params[2 * i], params[2 * i + 1]) for i, n in enumerate(names)}
    mags = {n: params[2 * len(names) + i] for i, n in enumerate(names)} if len(params) > 2 * len(names) else {}
    return pairs, mags

