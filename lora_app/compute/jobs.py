"""Fine-tuning runs shared by every session of this server: finished runs, and one training worker.

Training runs on one background thread, never on a session's script thread. So a run goes on while
its page redraws, Stop is a flag the worker reads after each step, and another session's page keeps
its own thread. Sessions asking for the same settings share one job; a finished run is kept (in memory
and, where a runs folder is set, on disk), so the second click anywhere in the class is instant.

A job is a list of settings (one run, or an experiment grid) trained in order. Each session that asks
for it is a watcher; a Stop removes that watcher, and the job stops only when no watcher is left.

Plain Python and torch; no streamlit.
"""
from __future__ import annotations

import os
import queue
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lora_core import pick_device
from lora_core.finetune import FinetuneRun, FinetuneSettings, finetune
from lora_core.runs import MAX_RUN_BYTES, load_run, read_run, save_run
from lora_core.tiny import TinyTransformer, load_base_model, model_digest

RUNS_ENV = "LORA_RUNS_DIR"          # a folder of prepared runs, shared by replicas; unset means memory only
MAX_RUNS_IN_MEMORY = 512             # a LoRA run is a few kB, a full fine-tuning run 72 kB
MAX_QUEUED_JOBS = 64                 # beyond this, a new job is refused with a message instead of queued
TRAIN_THREADS = 1                    # torch threads while training: the other core stays with the sessions
WORKER_NICE = 10                     # the training thread's nice value: a session's rerun goes first

_lock = threading.RLock()
_base: dict = {}


def base_model() -> TinyTransformer:
    """The shipped model on this server's device (float32), loaded once per process."""
    with _lock:
        if "model" not in _base:
            try:
                device = pick_device()
            except ValueError:  # a LORA_DEVICE this machine lacks: the sidebar says so, and the CPU runs it
                device = torch.device("cpu")
            model = load_base_model(device=device, dtype=torch.float32)
            _base["model"], _base["digest"] = model, model_digest(model)
        return _base["model"]


def base_digest() -> str:
    base_model()
    return _base["digest"]


def runs_dir() -> Path | None:
    value = os.environ.get(RUNS_ENV, "").strip()
    return Path(value) if value else None


class RunStore:
    """Finished runs by settings: memory first, then the runs folder (read back and verified)."""

    def __init__(self):
        self._runs: OrderedDict[FinetuneSettings, FinetuneRun] = OrderedDict()
        self.refused: dict[FinetuneSettings, str] = {}   # a saved file that failed its checks, and why

    def get(self, settings: FinetuneSettings) -> FinetuneRun | None:
        with _lock:
            run = self._runs.get(settings)
            if run is not None:
                self._runs.move_to_end(settings)
                return run
        folder = runs_dir()
        if folder is None or settings in self.refused:
            return None
        try:
            run = load_run(folder, base_model(), settings)
        except (ValueError, OSError) as e:
            with _lock:
                self.refused[settings] = str(e)
            return None
        if run is not None:
            self._remember(run)
        return run

    def put(self, run: FinetuneRun) -> None:
        self._remember(run)
        folder = runs_dir()
        if folder is not None:
            try:
                save_run(folder, run, base_digest())
            except OSError:
                pass  # a read-only folder still serves what it has; memory keeps this run

    def _remember(self, run: FinetuneRun) -> None:
        with _lock:
            self._runs[run.settings] = run
            self._runs.move_to_end(run.settings)
            while len(self._runs) > MAX_RUNS_IN_MEMORY:
                self._runs.popitem(last=False)

    def recent(self) -> list[FinetuneRun]:
        """The finished runs held in memory, the most recently used last."""
        with _lock:
            return list(self._runs.values())

    def find(self, key: str) -> FinetuneRun | None:
        """The finished run whose settings have this key: in memory, else in the runs folder (read back and verified,
        as :meth:`get` does); None when there is none. ``key`` must be a key's form (the caller checked it)."""
        with _lock:
            for run in self._runs.values():
                if run.settings.key() == key:
                    return run
        folder = runs_dir()
        path = folder / f"{key}.safetensors" if folder is not None else None
        if path is None or path.parent != folder or not path.is_file():
            return None
        try:
            with open(path, "rb") as f:
                run = read_run(f.read(MAX_RUN_BYTES + 1), base_model())
        except (ValueError, OSError):
            return None
        if run.settings.key() != key:
            return None
        self._remember(run)
        return run

    def clear(self) -> None:
        with _lock:
            self._runs.clear()
            self.refused.clear()


STORE = RunStore()


@dataclass
class Live:
    """The run in progress: what the page draws while it trains."""
    settings: FinetuneSettings
    losses: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Snapshot:
    state: str                      # "queued", "running", "done", "stopped" or "failed"
    ahead: int                      # jobs ahead of this one in the queue
    done: int                       # runs of the job finished
    total: int
    live: Live | None               # a copy of the run in progress
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.state in ("done", "stopped", "failed")


class Job:
    def __init__(self, settings: tuple[FinetuneSettings, ...]):
        self.settings = settings
        self.watchers: set[str] = set()
        self.state = "queued"
        self.done = 0
        self.live: Live | None = None
        self.error = ""
        self.cancelled = threading.Event()
        self.finished_event = threading.Event()

    def snapshot(self) -> Snapshot:
        with _lock:
            live = None
            if self.live is not None:
                live = Live(self.live.settings, list(self.live.losses), list(self.live.eval_steps),
                            list(self.live.accuracies))
            ahead = _queued.index(self) if self in _queued else 0
            return Snapshot(self.state, ahead, self.done, len(self.settings), live, self.error)

    def release(self, session: str) -> None:
        """This session stops watching; with nobody left, the job stops after its current step."""
        with _lock:
            self.watchers.discard(session)
            if not self.watchers and not self.finished_event.is_set():
                self.cancelled.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished_event.wait(timeout)


_jobs: dict[tuple[FinetuneSettings, ...], Job] = {}
_queued: list[Job] = []
_work: queue.Queue = queue.Queue()
_worker: list[threading.Thread] = []


class Busy(RuntimeError):
    """The queue is full: too many different jobs are waiting."""


def submit(settings: tuple[FinetuneSettings, ...] | list[FinetuneSettings], session: str) -> Job:
    """The job training ``settings`` (joined if another session asked first), with ``session`` watching."""
    settings = tuple(settings)
    with _lock:
        job = _jobs.get(settings)
        if job is None or job.cancelled.is_set():
            if len(_queued) >= MAX_QUEUED_JOBS:
                raise Busy(f"{len(_queued)} training jobs are already waiting on this server; try again in a minute")
            job = Job(settings)
            _jobs[settings] = job
            _queued.append(job)
            _work.put(job)
            _start_worker()
        job.watchers.add(session)
        return job


def job_for(settings: tuple[FinetuneSettings, ...] | list[FinetuneSettings]) -> Job | None:
    """The job in flight for ``settings``, if any session started one."""
    with _lock:
        job = _jobs.get(tuple(settings))
        return job if job is not None and not job.finished_event.is_set() else None


def watch(job: Job, session: str) -> None:
    with _lock:
        job.watchers.add(session)


def _start_worker() -> None:
    if not _worker or not _worker[0].is_alive():
        t = threading.Thread(target=_work_loop, name="lora-finetune-worker", daemon=True)
        _worker[:] = [t]
        t.start()


def _work_loop() -> None:
    # the worker yields the cores to the sessions' script threads: on Linux a thread has its own nice value
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: it trains at the normal priority
        pass
    while True:
        job = _work.get()
        with _lock:
            if job in _queued:
                _queued.remove(job)
            job.state = "running"
        try:
            _run_job(job)
        except Exception as e:  # noqa: BLE001 - the message is shown to the job's watchers
            with _lock:
                job.state, job.error = "failed", f"{type(e).__name__}: {e}"
        finally:
            with _lock:
                job.live = job.live if job.state == "stopped" else None
                if _jobs.get(job.settings) is job:
                    del _jobs[job.settings]
            job.finished_event.set()


def _run_job(job: Job) -> None:
    base = base_model()
    for settings in job.settings:
        if job.cancelled.is_set():
            with _lock:
                job.state = "stopped"
            return
        if STORE.get(settings) is not None:
            with _lock:
                job.done += 1
            continue
        live = Live(settings)
        with _lock:
            job.live = live

        def on_step(step: int, loss: float, acc: float | None) -> bool:
            with _lock:
                live.losses.append(loss)
                if acc is not None:
                    live.eval_steps.append(step)
                    live.accuracies.append(acc)
            return job.cancelled.is_set()

        run = finetune(base, settings, on_step=on_step, threads=TRAIN_THREADS)
        if run.stopped:
            with _lock:
                job.state = "stopped"
            return
        STORE.put(run)
        with _lock:
            job.done += 1
    with _lock:
        job.state = "done"
