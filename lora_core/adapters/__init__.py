"""Adapters people bring: what their updates look like and how they combine, each computed from the factors.

- :mod:`.spectrum`: the singular values of ΔW = s·A·B without forming the d×k matrix, and the ranks and energy
  shares read from them;
- :mod:`.similarity`: the LoRA paper's subspace similarity φ, and the cosine of two updates;
- :mod:`.merge`: PEFT's ``add_weighted_adapter`` combinations (linear, cat, svd, ties, dare_linear), op for op.

Reading the files, whatever they hold, is :mod:`lora_core.upload`.
"""
