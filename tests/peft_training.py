"""The family's training oracle: a PEFT model trained by torch's own AdamW (single-tensor, ``foreach=False``) on
whatever PEFT marks trainable, with the loss of :func:`lora_core.family.family_run` and its settings."""
from __future__ import annotations

import torch

from lora_core.family import FamilySettings
from lora_core.training import mse_loss


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
