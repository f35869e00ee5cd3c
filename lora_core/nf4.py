"""NF4, QLoRA's 4-bit NormalFloat, as bitsandbytes stores a frozen base weight.

The tensor is read as it is stored, row by row: for a PEFT layer that is Wᵀ (out×in). Each block of 64 values
gets one absmax (its largest |value|), and each value becomes the index (0–15) of the NF4 level nearest to
value/absmax. Dequantized, a value is its level times its block's absmax: W̃. The sixteen levels are the
quantiles of a standard normal, scaled to [−1, 1], with an exact zero (Dettmers et al. 2023, section 3):
eight for the positive half and seven for the negative, so that 0 is a level.

The stored cost is 4 bits a weight plus the absmax: 32 bits per block of 64, 4.5 bits a weight. Double
quantization stores the absmax constants in 8 bits, in blocks of 256 with a 32-bit constant each:
4 + 8/64 + 32/(64·256) ≈ 4.127 bits a weight. It changes what is stored, not how a weight is rounded here.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

BLOCKSIZE = 64
DOUBLE_QUANT_BLOCKSIZE = 256

# bitsandbytes' NF4 levels, the float32 values of its table (csrc, and functional.get_4bit_type("nf4"))
NF4_LEVELS = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)


class NF4Weight(NamedTuple):
    codes: torch.Tensor        # d×k, 0–15: each weight's level
    absmax: torch.Tensor       # one float32 per block of BLOCKSIZE values of Wᵀ, read row by row
    dequantized: torch.Tensor  # d×k: W̃ = level × its block's absmax (float32)
    block: torch.Tensor        # d×k: which block each weight fell in


def nf4_levels(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.tensor(NF4_LEVELS, dtype=dtype)


def nf4_bits_per_weight(blocksize: int = BLOCKSIZE, double_quant: bool = False) -> float:
    """4 bits a weight plus its share of the absmax constants."""
    if double_quant:
        return 4 + 8 / blocksize + 32 / (blocksize * DOUBLE_QUANT_BLOCKSIZE)
    return 4 + 32 / blocksize


def nf4_midpoints() -> torch.Tensor:
    """The 15 decision points between neighbouring levels, halfway, in float32: a value at a midpoint takes the
    lower level."""
    levels = nf4_levels()
    return (levels[:-1] + levels[1:]) / 2


def nf4_quantize(W: torch.Tensor, blocksize: int = BLOCKSIZE) -> NF4Weight:
    """W (d×k) in NF4 as PEFT hands it to bitsandbytes: Wᵀ's values read row by row, in blocks of ``blocksize``.

    Op for op as bitsandbytes 0.50 on the CPU: a full block is scaled by multiplying with 1/absmax, a last,
    shorter block by dividing by its own absmax; both are clamped to [−1, 1] (an all-zero block divides by
    1e-38 and stays zero), and each value takes the level whose interval holds it.
    """
    if W.ndim != 2:
        raise ValueError(f"W must be a matrix, got {W.ndim} dimensions")
    if not (isinstance(blocksize, int) and blocksize >= 2 and blocksize % 2 == 0):
        raise ValueError(f"the block size must be an even whole number, got {blocksize!r}")
    d, k = W.shape
    flat = W.T.reshape(-1).to(torch.float32)
    count = flat.numel()
    rem = count % blocksize
    full = count - rem
    head = flat[:full].view(-1, blocksize)
    absmax = head.abs().amax(dim=1) if full else flat.new_zeros(0)
    scaled = torch.clamp(head * (1.0 / absmax.clamp(min=1e-38)[:, None]), -1, 1).reshape(-1)
    if rem:
        tail_max = flat[full:].abs().max().clamp(min=1e-38)
        absmax = torch.cat([absmax, tail_max[None]])
        scaled = torch.cat([scaled, torch.clamp(flat[full:] / tail_max, -1, 1)])
    codes = torch.bucketize(scaled, nf4_midpoints().to(W.device))
    block = torch.arange(count, device=W.device) // blocksize
    values = nf4_levels().to(W.device)[codes] * absmax[block]
    as_w = lambda t: t.view(k, d).T
    return NF4Weight(as_w(codes), absmax, as_w(values), as_w(block))
