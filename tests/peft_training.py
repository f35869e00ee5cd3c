"""The training oracles: a PEFT model trained by torch's own AdamW (single-tensor, ``foreach=False``) on whatever
PEFT marks trainable, with the loss of :func:`lora_core.family.family_run` and its settings, or on the shipped
transformer with the batches and loss of :func:`lora_core.finetune.finetune`."""
from __future__ import annotations

import copy
import warnings
from itertools import islice

import pytest
import torch
from peft import LoraConfig, get_peft_model

from lora_core.family import FamilySettings
from lora_core.finetune import FinetuneSettings, batches, initial_adapters, loss_fn, module_names
from lora_core.tiny import task_targets
from lora_core.training import mse_loss
from tolerances import nudge, rel_tol


def peft_adamw_losses(model: torch.nn.Module, X: torch.Tensor, T: torch.Tensor,
                      s: FamilySettings) -> tuple[list[float], list[torch.nn.Parameter]]:
    """The loss before each of ``s.steps`` steps and after the last (steps + 1 numbers), and the trained parameters."""
    trained = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trained, lr=s.lr, betas=s.betas, eps=s.eps, weight_decay=s.weight_decay, foreach=False)
    losses = []
    for _ in range(s.steps):
        opt.zero_grad()
        loss = mse_loss(model(X), T)
        losses.append(float(loss.detach()))
        loss.backward()
        opt.step()
    with torch.no_grad():
        losses.append(float(mse_loss(model(X), T)))
    return losses, trained


def tiny_peft_model(base, s: FinetuneSettings, dtype, nudged=False, frozen=None, starts=None):
    """PEFT's LoRA (DoRA when ``s.dora``) on a copy of the base, started from our initial A, B (as PEFT's
    lora_A = Aᵀ, lora_B = Bᵀ); DoRA's m is PEFT's own start, ‖W + s·A·B‖ with B = 0.

    ``nudged`` starts every entry of A one ulp higher, to measure how far the run spreads one ulp. ``frozen`` is
    another model to put the adapters on (a copy is taken), ``starts`` other (A, B) to start from.
    """
    names = list(module_names(base.cfg, s))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PEFT's notes on DoRA's cost
        model = get_peft_model(copy.deepcopy(frozen or base), LoraConfig(target_modules=names, r=s.r, lora_alpha=s.alpha,
                                                               use_rslora=s.rslora, use_dora=s.dora,
                                                               lora_dropout=0.0, bias="none"))
    init = starts or initial_adapters(base.cfg, s, dtype)
    with torch.no_grad():
        for name, (A, B) in init.items():
            layer = model.base_model.model.get_submodule(name)
            assert layer.lora_A["default"].weight.dtype == dtype
            layer.lora_A["default"].weight.copy_(nudge(A).T if nudged else A.T)
            layer.lora_B["default"].weight.copy_(B.T)
            # α/r or α/√r: one or two correctly rounded operations, however PEFT writes them
            assert layer.scaling["default"] == pytest.approx(s.scaling, rel=rel_tol(torch.float64))
    return model


def tiny_peft_losses(base, s: FinetuneSettings, dtype, nudged=False, optimizer=None, frozen=None, starts=None):
    """PEFT's run of ``s`` on the shipped model: the training loss at each step, and the trained PEFT model.

    ``optimizer(model, params)`` makes the optimizer (torch's AdamW, ``foreach=False``, weight decay 0.01 unless
    given), and the batches are the run's own.
    """
    model = tiny_peft_model(base, s, dtype, nudged, frozen, starts)
    params = [p for p in model.parameters() if p.requires_grad]
    assert len(params) == (3 if s.dora else 2) * len(module_names(base.cfg, s))
    assert sum(p.numel() for p in params) == sum(A.numel() + B.numel() + (B.shape[1] if s.dora else 0)
                                                 for A, B in initial_adapters(base.cfg, s).values())
    opt = (optimizer or (lambda m, ps: torch.optim.AdamW(ps, lr=s.lr, weight_decay=0.01, foreach=False)))(model, params)
    losses = []
    for x in islice(batches(base.cfg, s), s.steps):
        loss = loss_fn(model(x), task_targets(s.task, x))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model
