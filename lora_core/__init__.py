"""Pure-torch LoRA math for the explainer: no streamlit, no plotly."""
from .adapter import adapter_zip_bytes, export_peft_adapter
from .device import default_dtype, describe_device, pick_device
from .example import MAX_DIM, MAX_N, PRESETS, build_example, check_dims
from .lora import (
    Example,
    LoraForward,
    ParamCounts,
    delta_weight,
    init_gaussian,
    init_peft_default,
    init_random,
    lora_forward,
    lora_scaling,
    merge,
    param_counts,
    seed_example,
    unmerge,
)
from .trace import STATE_FIELDS, StepRecord, Trace, adamw_trace, replay_step, state_before
from .training import (
    MAX_STEPS,
    AdamWStage,
    FullFinetuneTrace,
    Grads,
    Target,
    adamw_step,
    check_hyperparams,
    full_finetune_trace,
    lora_grads,
    make_target,
    mse_loss,
    rank_r_floor,
)
from .upload import MAX_ADAPTER_BYTES, LoadedAdapter, load_peft_adapter_zip

__all__ = [
    "MAX_ADAPTER_BYTES", "LoadedAdapter", "adapter_zip_bytes", "export_peft_adapter", "load_peft_adapter_zip",
    "MAX_STEPS", "STATE_FIELDS", "AdamWStage", "FullFinetuneTrace", "Grads", "StepRecord", "Target", "Trace",
    "adamw_step", "replay_step", "state_before",
    "adamw_trace", "check_hyperparams", "full_finetune_trace", "lora_grads", "make_target", "mse_loss",
    "rank_r_floor",
    "Example", "LoraForward", "ParamCounts", "MAX_DIM", "MAX_N", "PRESETS",
    "build_example", "check_dims", "default_dtype", "delta_weight", "describe_device",
    "init_gaussian", "init_peft_default", "init_random", "lora_forward", "lora_scaling",
    "merge", "param_counts", "pick_device", "seed_example", "unmerge",
]
