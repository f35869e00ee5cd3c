"""LoRA fine-tuning of the real transformer (:mod:`lora_core.tiny`) on a new task, and full fine-tuning beside it.

:func:`finetune` is the one entry point. LoRA trains A (d_in×r) and B (r×d_out) per adapted linear
layer with AdamW (:func:`lora_core.training.adamw_step`, torch's algorithm op for op); the base
model's tensors are read, never written. Full fine-tuning trains a copy of every parameter with
the same AdamW and the same batches, as the baseline.

A run is fixed by its :class:`FinetuneSettings`: A starts as PEFT's default (kaiming-uniform, B = 0)
from ``seed``, and batch t is drawn from ``seed`` + 1, so the same settings give the same numbers.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .checks import is_whole
from .device import torch_threads
from .lora import init_peft_default, lora_scaling
from .tiny import (
    ADAPT_TASKS,
    ATTENTION_MODULES,
    TinyConfig,
    TinyTransformer,
    held_out_set,
    task_targets,
    train_batch,
)
from .training import adamw_step
from .variants import VARIANTS, frozen_model, layer_args, stored_bytes, variant_start

TARGET_TYPES = {"q": ("q_proj",), "k": ("k_proj",), "v": ("v_proj",), "o": ("o_proj",), "ffn": ("up_proj", "down_proj")}
TARGET_LABELS = {"q": "Q", "k": "K", "v": "V", "o": "O", "ffn": "FFN"}
MAX_FT_STEPS = 2000
BATCH = 64
EVAL_EVERY = 25
HELD_OUT = 1000
WEIGHT_DECAY = 0.01    # torch.optim.AdamW's default


@dataclass(frozen=True)
class FinetuneSettings:
    """What determines a run; finished runs are cached and saved under these settings."""
    task: str = "reverse"
    targets: tuple[str, ...] = ("q", "v")   # any of q, k, v, o, ffn; ignored by full fine-tuning
    layers: tuple[int, ...] = ()             # the layers adapted; () means all of them
    r: int = 4
    alpha: float = 8.0
    rslora: bool = False
    lr: float = 1e-2
    steps: int = 300
    seed: int = 0
    full: bool = False                       # full fine-tuning: every parameter trains, no adapter
    variant: str = "lora"                    # which of the family (lora_core.variants.VARIANTS) trains

    def __post_init__(self):
        # full fine-tuning has no adapter: its LoRA fields take their defaults, so one baseline run serves
        # every LoRA setting of the same task, learning rate, steps and seed (and is cached once); VeRA has
        # no α (its update is not scaled), so one VeRA run serves every α
        if self.full:
            for name in ("targets", "layers", "r", "alpha", "rslora", "variant"):
                object.__setattr__(self, name, _LORA_DEFAULTS[name])
        elif self.variant == "vera":
            for name in ("alpha", "rslora"):
                object.__setattr__(self, name, _LORA_DEFAULTS[name])

    @property
    def dora(self) -> bool:
        """DoRA: each adapted layer also trains a magnitude per output column."""
        return self.variant == "dora"

    @property
    def scaling(self) -> float:
        return 1.0 if self.variant == "vera" else lora_scaling(self.alpha, self.r, self.rslora)

    def key(self) -> str:
        """A stable text key, e.g. for a results file's name."""
        if self.full:
            return f"full-{self.task}-lr{self.lr!r}-steps{self.steps}-seed{self.seed}"
        layers = "all" if not self.layers else "".join(map(str, self.layers))
        return (f"{self.variant}-{self.task}-{'+'.join(self.targets)}-L{layers}-r{self.r}"
                f"-a{self.alpha!r}-{'rs' if self.rslora else 'std'}-lr{self.lr!r}-steps{self.steps}-seed{self.seed}")


_LORA_DEFAULTS = {"targets": ("q", "v"), "layers": (), "r": 4, "alpha": 8.0, "rslora": False, "variant": "lora"}
assert all(getattr(FinetuneSettings(), k) == v for k, v in _LORA_DEFAULTS.items())


def module_names(cfg: TinyConfig, settings: FinetuneSettings) -> tuple[str, ...]:
    """The full names of the linear layers a LoRA run adapts, in the model's order."""
    layers = settings.layers or tuple(range(cfg.layers))
    types = [m for t in settings.targets for m in TARGET_TYPES[t]]
    return tuple(f"layers.{i}.{m}" for i in sorted(layers) for m in (*ATTENTION_MODULES, "up_proj", "down_proj")
                 if m in types)


def check_settings(cfg: TinyConfig, s: FinetuneSettings) -> None:
    """Raise ValueError naming the first setting no run can use."""
    if s.task not in ADAPT_TASKS:
        raise ValueError(f"task {s.task!r} is not an adaptation task; choose from {', '.join(ADAPT_TASKS)}")
    if not (isinstance(s.lr, (int, float)) and math.isfinite(s.lr) and 0 < s.lr <= 1):
        raise ValueError(f"the learning rate must be a finite number in (0, 1], got {s.lr!r}")
    if not is_whole(s.steps, 1, MAX_FT_STEPS):
        raise ValueError(f"steps must be a whole number in 1…{MAX_FT_STEPS}, got {s.steps!r}")
    if not is_whole(s.seed, 0, 2**31 - 1):
        raise ValueError(f"the seed must be a whole number in 0…{2**31 - 1}, got {s.seed!r}")
    if s.full:
        return
    unknown = [t for t in s.targets if t not in TARGET_TYPES]
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not a target; choose from {', '.join(TARGET_TYPES)}")
    if not s.targets:
        raise ValueError("no target is ticked: choose at least one of Q, K, V, O and the FFN, or full fine-tuning")
    bad = [i for i in s.layers if not is_whole(i, 0, cfg.layers - 1, exact=True)]
    if bad:
        raise ValueError(f"layer {bad[0]!r} does not exist; the model has layers 0…{cfg.layers - 1}")
    if not is_whole(s.r, 1):
        raise ValueError(f"the rank r must be a whole number of at least 1, got {s.r!r}")
    widest = min(min(cfg.module_shape(m)) for t in s.targets for m in TARGET_TYPES[t])
    if s.r > widest:
        raise ValueError(f"r = {s.r} is above the width of the adapted matrices: a {widest}-wide matrix "
                         f"has rank at most {widest}, so r can be at most {widest} here")
    if not (isinstance(s.alpha, (int, float)) and math.isfinite(s.alpha) and 0 < s.alpha <= 1024):
        raise ValueError(f"α must be a finite number in (0, 1024], got {s.alpha!r}")
    if s.variant not in VARIANTS:
        raise ValueError(f"{s.variant!r} is not a variant; choose from {', '.join(VARIANTS)}")


# --- the data: the same for LoRA, full fine-tuning and the PEFT oracle ---------------------------

def batches(cfg: TinyConfig, settings: FinetuneSettings) -> Iterator[torch.Tensor]:
    """Batch 1, 2, … of the run: BATCH training sequences each, drawn from ``seed`` + 1 on the CPU."""
    g = torch.Generator().manual_seed(settings.seed + 1)
    while True:
        yield train_batch(cfg, g, BATCH)


def initial_adapters(cfg: TinyConfig, settings: FinetuneSettings,
                     dtype: torch.dtype = torch.float32) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """PEFT's default start for each adapted layer, A ~ U(−1/√d_in, 1/√d_in) and B = 0, from ``seed``."""
    g = torch.Generator().manual_seed(settings.seed)
    out = {}
    for name in module_names(cfg, settings):
        A, B = init_peft_default(*cfg.module_shape(name.rsplit(".", 1)[1]), settings.r, generator=g)
        out[name] = (A.to(dtype), B.to(dtype))
    return out


def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every output position."""
    return F.cross_entropy(logits.flatten(0, -2), targets.flatten())


# --- the run -------------------------------------------------------------------------------------

class FinetuneRun(NamedTuple):
    settings: FinetuneSettings
    losses: tuple[float, ...]                 # training loss at step 1 … steps_done
    eval_steps: tuple[int, ...]               # the steps where held-out accuracy was measured (0 = before)
    accuracies: tuple[float, ...]             # held-out token accuracy on the task at those steps
    adapters: dict                            # LoRA: name → (A d_in×r, B r×d_out) on the CPU
    full_state: dict                          # full fine-tuning: the trained state_dict on the CPU
    scaling: float                            # s = α/r (or α/√r); 1 for full fine-tuning
    trainable: int                            # numbers the run trains
    total: int                                # numbers in the base model
    wall_s: float                             # the training loop's wall time on this device
    peak_bytes: int                           # peak memory of training (see memory_how)
    memory_how: str
    device: str
    dtype: str
    stopped: bool                             # Stop was pressed before the last step
    magnitudes: Mapping = MappingProxyType({})  # DoRA: name → m (d_out) on the CPU; empty for the others
    vectors: Mapping = MappingProxyType({})     # VeRA: name → (d r, b d_out), what trained; adapters holds
                                                # (A·diag(d), B·diag(b)) with A and B the frozen projections
    frozen_bytes: int = -1                      # the frozen weights as stored (QLoRA's in 4 bits)

    @property
    def accuracy(self) -> float:
        return self.accuracies[-1]

    @property
    def steps_done(self) -> int:
        return len(self.losses)


ProgressFn = Callable[[int, float, "float | None"], "bool | None"]


def _tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class _SavedBytes:
    """Counts the bytes autograd saves for the backward pass (each storage once): the activations' memory."""

    def __init__(self, held: set[int] = frozenset()):
        self.seen: dict[int, int] = {}
        self.held = held  # storages counted already, as the frozen weights

    def pack(self, t: torch.Tensor):
        ptr = t.untyped_storage().data_ptr()
        if ptr in self.held:
            return t
        self.seen[ptr] = max(self.seen.get(ptr, 0), t.untyped_storage().nbytes())
        return t

    @property
    def total(self) -> int:
        return sum(self.seen.values())


def finetune(base: TinyTransformer, settings: FinetuneSettings, *, on_step: ProgressFn | None = None,
             eval_every: int = EVAL_EVERY, held_out: torch.Tensor | None = None, threads: int = 1) -> FinetuneRun:
    """Fine-tune ``base`` on ``settings.task``: LoRA on the chosen layers, or every parameter if ``full``.

    ``on_step(step, loss, accuracy or None)`` is called after every step (accuracy on the steps it is
    measured); returning True stops the run there, and the run is returned marked ``stopped``.
    The base model runs on its own device and dtype, and is never modified. On the CPU it trains with
    ``threads`` intra-op threads (one by default: see :func:`lora_core.device.torch_threads`).
    """
    with torch_threads(threads):
        return _finetune(base, settings, on_step, eval_every, held_out)


def _finetune(base, settings, on_step, eval_every, held_out) -> FinetuneRun:
    cfg = base.cfg
    check_settings(cfg, settings)
    device, dtype = base.embed.weight.device, base.embed.weight.dtype
    held = (held_out if held_out is not None else held_out_set(cfg, HELD_OUT)).to(device)
    held_y = task_targets(settings.task, held)

    if settings.full:
        model = frozen = copy.deepcopy(base).requires_grad_(True)
        params = [p for _, p in model.named_parameters()]
        factors = (1.0,) * len(params)
        scaling = 1.0

        def forward(x):
            return model(x)
    else:
        vs = variant_start(base, settings.variant, module_names(cfg, settings),
                              initial_adapters(cfg, settings, dtype), r=settings.r, scaling=settings.scaling)
        frozen, params, factors, scaling = vs.model, vs.params, vs.lr_factors, vs.scaling

        def forward(x):
            pairs, mags = layer_args(vs, params)
            return frozen(x, pairs, scaling, magnitudes=mags)

    def accuracy() -> float:
        with torch.no_grad():
            return float((forward(held).argmax(-1) == held_y).double().mean())

    exp_avg = [torch.zeros_like(p) for p in params]
    exp_avg_sq = [torch.zeros_like(p) for p in params]
    # held all along: the frozen weights as stored (QLoRA's in 4 bits; none for full fine-tuning, whose weights are
    # what trains) and the trained tensors; each trained tensor adds its gradient and AdamW's two moments. Autograd
    # also saves weights for the backward pass: those are counted once, here
    frozen_bytes = 0 if settings.full else stored_bytes(frozen)
    held_bytes = frozen_bytes + _tensor_bytes(params)
    persistent = held_bytes + 3 * _tensor_bytes(params)
    held_storages = {t.untyped_storage().data_ptr() for t in (*frozen.parameters(), *frozen.buffers(), *params)}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    losses, eval_steps, accs = [], [0], [accuracy()]
    saved_peak, stopped = 0, False
    data = batches(cfg, settings)
    start = time.perf_counter()
    for step in range(1, settings.steps + 1):
        x = next(data).to(device)
        counter = _SavedBytes(held_storages)
        with torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda t: t):
            loss = loss_fn(forward(x), task_targets(settings.task, x))
        grads = torch.autograd.grad(loss, params)
        saved_peak = max(saved_peak, counter.total)
        with torch.no_grad():
            for i, (p, g) in enumerate(zip(params, grads)):
                st = adamw_step(p, g, exp_avg[i], exp_avg_sq[i], step, lr=settings.lr * factors[i],
                                weight_decay=WEIGHT_DECAY)
                p.copy_(st.new)
                exp_avg[i], exp_avg_sq[i] = st.exp_avg, st.exp_avg_sq
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"the loss became {value} at step {step}: lower the learning rate")
        losses.append(value)
        acc = None
        if step % eval_every == 0 or step == settings.steps:
            acc = accuracy()
            eval_steps.append(step)
            accs.append(acc)
        if on_step is not None and on_step(step, value, acc) and step < settings.steps:
            if eval_steps[-1] != step:
                eval_steps.append(step)
                accs.append(accuracy())
            stopped = True
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - before + held_bytes
        how = "torch.cuda.max_memory_allocated during the run, plus the weights and trained tensors held before it"
    else:
        peak = persistent + saved_peak
        how = ("bytes of every tensor training holds at its peak: the frozen weights as stored, the trained tensors, "
               "their gradients, AdamW's two moments and the activations autograd saved for the backward pass")
    wall = time.perf_counter() - start
    cpu = lambda t: t.detach().to("cpu").clone()
    adapters_out, magnitudes_out, vectors_out, full_state = {}, {}, {}, {}
    with torch.no_grad():
        if settings.full:
            full_state = {k: cpu(v) for k, v in model.state_dict().items()}
        else:
            pairs, mags = layer_args(vs, params)
            adapters_out = {n: (cpu(A), cpu(B)) for n, (A, B) in pairs.items()}
            magnitudes_out = {n: cpu(m) for n, m in mags.items()}
            if vs.projections:
                vectors_out = {n: (cpu(params[2 * i]), cpu(params[2 * i + 1])) for i, n in enumerate(vs.names)}
    return FinetuneRun(settings, tuple(losses), tuple(eval_steps), tuple(accs), adapters_out, full_state, scaling,
                       sum(p.numel() for p in params), sum(p.numel() for p in base.parameters()), wall, int(peak),
                       how, str(device), str(dtype).replace("torch.", ""), stopped, MappingProxyType(magnitudes_out),
                       MappingProxyType(vectors_out), frozen_bytes)


def finetuned_model(base: TinyTransformer, run: FinetuneRun) -> TinyTransformer:
    """The model a run's adapters sit on, on the base's device and dtype: full fine-tuning's trained model; the base
    itself for LoRA, DoRA, LoRA+ and VeRA; its NF4 copy for QLoRA and its residual for PiSSA."""
    s = run.settings
    if not s.full:
        return frozen_model(base, s.variant, module_names(base.cfg, s), s.r, s.scaling)
    model = copy.deepcopy(base)
    model.load_state_dict(run.full_state)
    return model


def adapter_args(base: TinyTransformer, run: FinetuneRun) -> tuple[dict, float, dict]:
    """The run's (A, B) pairs, s and DoRA magnitudes on the base's device and dtype: what its model's forward takes."""
    device, dtype = base.embed.weight.device, base.embed.weight.dtype
    pairs = {n: (A.to(device, dtype), B.to(device, dtype)) for n, (A, B) in run.adapters.items()}
    return pairs, run.scaling, {n: m.to(device, dtype) for n, m in run.magnitudes.items()}


def predict(base: TinyTransformer, run: FinetuneRun | None, tokens: torch.Tensor) -> torch.Tensor:
    """The digits written for ``tokens`` by the base (``run`` None) or by the run's adapted model."""
    device = base.embed.weight.device
    with torch.no_grad():
        if run is None:
            return base(tokens.to(device)).argmax(-1).cpu()
        if run.settings.full:
            return finetuned_model(base, run)(tokens.to(device)).argmax(-1).cpu()
        pairs, scaling, mags = adapter_args(base, run)
        return finetuned_model(base, run)(tokens.to(device), pairs, scaling, magnitudes=mags).argmax(-1).cpu()


def weight_updates(base: TinyTransformer, run: FinetuneRun) -> dict[str, torch.Tensor]:
    """ΔW (d_in×d_out, float64, CPU) per linear layer: what training changed in the weight the layer uses.

    Full fine-tuning: W_after − W_before. LoRA, LoRA+ and VeRA: s·A·B. DoRA: m ⊙ (W + s·A·B)/‖W + s·A·B‖ − W.
    PiSSA: W_res + s·A·B − W. QLoRA: s·A·B over W̃, the NF4 weight it trained on.
    """
    if run.settings.full:
        out = {}
        for name in base.cfg.module_names():
            before = base.get_submodule(name).weight.detach().to("cpu", torch.float64)
            after = run.full_state[f"{name}.weight"].to(torch.float64)
            out[name] = (after - before).T
        return out
    frozen = finetuned_model(base, run)
    out = {}
    with torch.no_grad():
        for n, (A, B) in run.adapters.items():
            W = frozen.weight(n).detach().to("cpu", torch.float64)
            after = W + run.scaling * (A.double() @ B.double())
            if n in run.magnitudes:
                after = run.magnitudes[n].double() * after / torch.linalg.vector_norm(after, dim=0)
            before = W if run.settings.variant == "qlora" else base.weight(n).detach().to("cpu", torch.float64)
            out[n] = after - before
    return out
