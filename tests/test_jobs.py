"""The Real model page's shared worker (lora_app.compute.jobs): jobs train on its thread, are shared, stop, fail and are stored.

The worker thread and STORE live for the whole process, so every test here takes a cold store with its own
runs folder (the cold_store fixture) and its own seeds, and waits for each job it starts.
"""
import threading
from dataclasses import replace

import pytest
import torch

from lora_app.compute import jobs
from lora_core.finetune import FinetuneSettings, finetune
from lora_core.runs import load_run, run_bytes, run_path
from lora_core.tiny import load_base_model

WAIT_S = 60


@pytest.fixture(autouse=True)
def _cpu(monkeypatch, cold_store):
    monkeypatch.setenv("LORA_DEVICE", "cpu")
    yield
    for job in list(jobs._jobs.values()):  # nothing of a failed test trains on into the next one
        job.cancelled.set()
        job.wait(WAIT_S)


def settings(seed: int, **kw) -> FinetuneSettings:
    return FinetuneSettings(task="reverse", targets=("q", "v"), r=2, steps=25, seed=seed, **kw)


@pytest.fixture
def gate(monkeypatch):
    """Hold the worker inside a run's first step until the test opens the gate (``started`` says it got there)."""
    started, proceed = threading.Event(), threading.Event()
    real = jobs.finetune

    def held(base, s, *, on_step=None, **kw):
        def step(*args):
            started.set()
            assert proceed.wait(WAIT_S)
            return on_step(*args)
        return real(base, s, on_step=step, **kw)

    monkeypatch.setattr(jobs, "finetune", held)
    yield started, proceed
    proceed.set()


def test_a_submitted_job_trains_on_the_worker_and_stores_the_run():
    s = settings(8101)
    pair = (s, replace(s, full=True))
    job = jobs.submit(pair, "a")
    assert jobs.job_for(pair) is job and job.watchers == {"a"}
    assert job.wait(WAIT_S)
    snap = job.snapshot()
    assert (snap.state, snap.done, snap.total, snap.live, snap.error) == ("done", 2, 2, None, "")
    assert jobs.job_for(pair) is None  # a finished job is not in flight
    base = load_base_model()
    for x in pair:
        run, oracle = jobs.STORE.get(x), finetune(base, x)
        assert run is not None and run.settings == x and not run.stopped
        # the worker runs the same finetune, on the same single thread, from the same inputs: the same bits
        assert run.losses == oracle.losses and run.accuracies == oracle.accuracies
    assert job.watchers == {"a"} and threading.current_thread().name != "lora-finetune-worker"


def test_a_job_whose_runs_are_stored_trains_nothing(monkeypatch):
    s = settings(8102)
    assert jobs.submit((s,), "a").wait(WAIT_S)
    monkeypatch.setattr(jobs, "finetune", lambda *a, **k: pytest.fail("a stored run was trained again"))
    job = jobs.submit((s,), "b")
    assert job.wait(WAIT_S) and job.snapshot().state == "done" and job.snapshot().done == 1


def test_two_sessions_asking_for_the_same_settings_share_one_job(gate):
    started, proceed = gate
    s = settings(8103)
    a = jobs.submit((s,), "a")
    b = jobs.submit([s], "b")  # a list of the same settings is the same job
    assert a is b and a.watchers == {"a", "b"}
    assert started.wait(WAIT_S)
    assert jobs.submit((s,), "a") is a and a.watchers == {"a", "b"}
    assert jobs.submit((settings(8104),), "a") is not a  # other settings: another job
    proceed.set()
    assert a.wait(WAIT_S) and a.snapshot().state == "done"


def test_a_stop_by_one_of_two_watchers_does_not_stop_the_job(gate):
    started, proceed = gate
    s = settings(8105)
    job = jobs.submit((s,), "a")
    jobs.watch(job, "b")
    assert started.wait(WAIT_S)
    job.release("a")
    assert not job.cancelled.is_set() and job.watchers == {"b"}
    proceed.set()
    assert job.wait(WAIT_S) and job.snapshot().state == "done"
    assert jobs.STORE.get(s) is not None


def test_a_stop_by_the_last_watcher_stops_the_job_and_keeps_nothing(gate, cold_store):
    started, proceed = gate
    s = settings(8106)
    pair = (s, replace(s, full=True))
    job = jobs.submit(pair, "a")
    jobs.watch(job, "b")
    assert started.wait(WAIT_S)
    snap = job.snapshot()
    assert snap.state == "running" and snap.live is not None and snap.live.settings == s
    job.release("a")
    job.release("b")
    assert job.cancelled.is_set()
    proceed.set()
    assert job.wait(WAIT_S)
    snap = job.snapshot()
    assert snap.state == "stopped" and snap.done == 0
    assert snap.live is not None and 1 <= len(snap.live.losses) < s.steps  # what it had reached, for the page
    assert jobs.STORE.get(s) is None and jobs.STORE.get(pair[1]) is None
    assert not run_path(cold_store, s).exists() and not list(cold_store.glob("*.safetensors"))
    assert jobs.job_for(pair) is None
    again = jobs.submit(pair, "a")  # a new press starts over with a new job
    assert again is not job and not again.cancelled.is_set()
    again.release("a")
    assert again.wait(WAIT_S)


def test_a_full_queue_refuses_a_new_job_with_a_message(gate, monkeypatch):
    started, proceed = gate
    monkeypatch.setattr(jobs, "MAX_QUEUED_JOBS", 1)
    running = jobs.submit((settings(8107),), "a")
    assert started.wait(WAIT_S)  # off the queue, on the worker
    waiting = jobs.submit((settings(8108),), "a")
    assert waiting.snapshot().state == "queued" and waiting.snapshot().ahead == 0
    with pytest.raises(jobs.Busy, match="1 training jobs are already waiting on this server; try again"):
        jobs.submit((settings(8109),), "b")
    assert jobs.job_for((settings(8109),)) is None
    assert jobs.submit((settings(8108),), "b") is waiting  # joining a queued job is not a new job
    for job in (running, waiting):
        job.release("a")
        job.release("b")
    proceed.set()
    assert running.wait(WAIT_S) and waiting.wait(WAIT_S)
    assert waiting.snapshot().state == "stopped"  # nobody watched it any more: it never trained


def test_a_failing_run_marks_the_job_failed_and_the_worker_serves_the_next_job(monkeypatch):
    real = jobs.finetune
    bad = settings(8110)

    def flaky(base, s, **kw):
        if s == bad:
            raise RuntimeError("the disk is on fire")
        return real(base, s, **kw)

    monkeypatch.setattr(jobs, "finetune", flaky)
    job = jobs.submit((bad,), "a")
    assert job.wait(WAIT_S)
    snap = job.snapshot()
    assert snap.state == "failed" and snap.error == "RuntimeError: the disk is on fire" and snap.live is None
    assert jobs.STORE.get(bad) is None and jobs.job_for((bad,)) is None
    good = jobs.submit((settings(8111),), "a")
    assert good.wait(WAIT_S) and good.snapshot().state == "done"
    assert jobs._worker[0].is_alive()


def test_the_store_writes_each_run_and_a_fresh_store_reads_it_back_verified(cold_store):
    s = settings(8112)
    run = finetune(jobs.base_model(), s)
    jobs.STORE.put(run)
    path = run_path(cold_store, s)
    assert path.exists() and [p.name for p in cold_store.iterdir()] == [path.name]
    fresh = jobs.RunStore()
    back = fresh.get(s)
    assert back is not None and back is not run
    assert back.accuracies == run.accuracies and back.losses == run.losses
    for n in run.adapters:
        assert torch.equal(back.adapters[n][0], run.adapters[n][0]) and torch.equal(back.adapters[n][1], run.adapters[n][1])
    assert fresh.get(s) is back  # from memory the second time
    assert fresh.get(settings(8113)) is None and not fresh.refused  # no file is no refusal


def test_a_refused_file_is_remembered_with_its_reason(cold_store):
    s = settings(8114)
    run = finetune(jobs.base_model(), s)
    jobs.STORE.put(run)
    path = run_path(cold_store, s)
    acc = run.accuracies[-1] + 0.01
    path.write_bytes(run_bytes(run._replace(accuracies=run.accuracies[:-1] + (acc,)), jobs.base_digest()))
    fresh = jobs.RunStore()
    assert fresh.get(s) is None
    assert fresh.refused[s] == f"its weights reach {run.accuracies[-1]:.2%} held-out accuracy, not the {acc:.2%} it records"
    path.write_bytes(b"garbage")
    other = jobs.RunStore()
    assert other.get(s) is None and "it is not a run file" in other.refused[s]
    jobs.STORE.put(run)  # repaired on disk: the store that refused it does not read it again
    assert load_run(cold_store, jobs.base_model(), s) is not None
    assert other.get(s) is None and s in other.refused
    other.clear()
    assert other.get(s) is not None and not other.refused


def test_without_a_runs_folder_the_store_keeps_runs_in_memory_only(monkeypatch, tmp_path):
    monkeypatch.delenv(jobs.RUNS_ENV)
    assert jobs.runs_dir() is None
    s = settings(8115)
    run = finetune(jobs.base_model(), s)
    jobs.STORE.put(run)
    assert jobs.STORE.get(s) is run and jobs.RunStore().get(s) is None
