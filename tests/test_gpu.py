"""lora_core.gpu, which GPU a method needs: what QLoRA quantizes counted on meta-device transformers models, the
per-parameter accounting and the activations re-derived by hand, and the QLoRA paper's 65B figures."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_scale import ARCH, build_meta

from lora_core.gpu import (
    CARDS,
    CUDA_RESERVE,
    METHODS,
    Workload,
    activation_bytes,
    fits,
    gigabytes,
    gpu_estimate,
    largest_fitting,
    quantized_params,
)
from lora_core.nf4 import nf4_bits_per_weight
from lora_core.scale import MODELS, TARGETS, count_lora_params

BLOCK_LINEARS = (torch.nn.Linear, __import__("transformers").pytorch_utils.Conv1D)


def linear_weights_in_blocks(key: str) -> int:
    """Every weight of a linear layer (nn.Linear or GPT-2's Conv1D) except the output head, counted on the model
    transformers builds: what bitsandbytes' load_in_4bit replaces (its modules_to_not_convert keeps the head)."""
    model = build_meta(key)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    total = 0
    for name, module in model.named_modules():
        if isinstance(module, BLOCK_LINEARS) and module is not head:
            if key.startswith(("bert", "roberta")) and "pooler" in name:
                continue  # the pooler is not a transformer block's layer
            total += module.weight.numel()
    return total


@pytest.mark.parametrize("key", list(ARCH))
def test_what_qlora_quantizes_is_every_linear_weight_of_the_blocks(key):
    assert quantized_params(key) == linear_weights_in_blocks(key)


def test_the_two_65_to_70b_models_are_the_sizes_their_configs_build():
    assert MODELS["llama-65b"].base_params == 65_285_660_672
    assert MODELS["llama-2-70b"].base_params == 68_976_648_192


def test_each_method_is_counted_byte_by_byte():
    w = Workload(1024, 2, False)
    est = gpu_estimate("llama-2-7b", ("q", "v"), 16, w, double_quant=False)
    P, L, Q = 6_738_415_616, count_lora_params("llama-2-7b", ("q", "v"), 16), quantized_params("llama-2-7b")
    act = activation_bytes("llama-2-7b", w)
    assert est.methods["full"].total == 12 * P + act + CUDA_RESERVE
    assert est.methods["lora"].total == 2 * P + 12 * L + act + CUDA_RESERVE
    assert est.methods["qlora"].total == pytest.approx(4.5 / 8 * Q + 2 * (P - Q) + 12 * L + act + CUDA_RESERVE, rel=1e-15)
    dq = gpu_estimate("llama-2-7b", ("q", "v"), 16, w, double_quant=True).methods["qlora"].weights
    assert dq == pytest.approx(nf4_bits_per_weight(64, True) / 8 * Q + 2 * (P - Q), rel=1e-15)


def test_activations_are_korthikanti_et_als_count_written_out_for_gpt2():
    # GPT-2: h = 768, a = 12 heads, 12 layers, V = 50257; s = 1024, b = 4
    s, b, h, a, layers, V = 1024, 4, 768, 12, 12, 50257
    per_layer = s * b * h * 34 + 5 * a * s * s * b   # s·b·h·(34 + 5·a·s/h)
    logits = 8 * b * s * V
    assert activation_bytes("gpt2", Workload(s, b, False)) == layers * per_layer + logits
    assert activation_bytes("gpt2", Workload(s, b, True)) == layers * 2 * s * b * h + per_layer + logits


def test_the_qlora_papers_65b_figures_hold_under_its_conditions():
    """More than 780 GB for 16-bit full fine-tuning, under 48 GB with QLoRA (LoRA r = 64 on every linear layer)."""
    est = gpu_estimate("llama-65b", TARGETS, 64, Workload(512, 1, True), double_quant=True)
    assert est.methods["full"].total > 780e9
    assert est.methods["qlora"].total < 48e9
    assert est.methods["lora"].total > 80e9  # plain LoRA over a 16-bit 65B base fits no single card here


def test_a_t4_fits_a_7b_model_with_lora_and_a_13b_model_with_qlora_but_not_with_lora():
    t4 = next(c for c in CARDS if c.key == "t4")
    assert largest_fitting(MODELS, t4, "lora", ("q", "v"), 8) == "mistral-7b"
    assert largest_fitting(MODELS, t4, "qlora", ("q", "v"), 8) == "llama-2-13b"
    assert not fits(gpu_estimate("llama-2-13b", ("q", "v"), 8).methods["lora"].total, t4)


@settings(max_examples=60, deadline=None)
@given(model=st.sampled_from(list(MODELS)), targets=st.sets(st.sampled_from(TARGETS)), r=st.sampled_from([1, 4, 64, 256]),
       seq=st.sampled_from([128, 512, 4096]), batch=st.sampled_from([1, 8]), ckpt=st.booleans())
def test_qlora_never_needs_more_than_lora_nor_lora_more_than_full(model, targets, r, seq, batch, ckpt):
    est = gpu_estimate(model, tuple(targets), r, Workload(seq, batch, ckpt))
    full, lora, qlora = (est.methods[m].total for m in METHODS)
    assert qlora < lora
    assert lora <= full or count_lora_params(model, tuple(targets), r) > MODELS[model].base_params / 6
    assert activation_bytes(model, Workload(seq, batch, True)) <= activation_bytes(model, Workload(seq, batch, False))


def test_a_larger_card_fits_at_least_as_large_a_model():
    for method in METHODS:
        sizes = []
        for card in sorted(CARDS, key=lambda c: c.memory):
            best = largest_fitting(MODELS, card, method, ("q", "v"), 8)
            sizes.append(MODELS[best].base_params if best else 0)
        assert sizes == sorted(sizes), method


@pytest.mark.parametrize("w, words", [(Workload(0, 1, True), "sequence length"), (Workload(512, 2.5, True), "batch size"),
                                      (Workload(512, 1, "yes"), "checkpointing")])
def test_a_workload_that_makes_no_sense_is_refused_by_name(w, words):
    with pytest.raises(ValueError, match=words):
        gpu_estimate("gpt2", ("q",), 4, w)


def test_gigabytes_round_up_so_a_total_is_never_shown_smaller():
    assert gigabytes(47_950_000_001) == 48.0 and gigabytes(48e9) == 48.0 and gigabytes(48_000_000_001) == 48.1
    assert math.isclose(gigabytes(1), 0.1)
