"""The one train flow of the Real model page and its slides: a button that trains runs, Stop beside it, a live view.

Jobs run on the server's worker (:mod:`lora_app.compute.jobs`); a script only watches them. A Stop (or any
other click) reruns the script, which ends the watching loop at once; the job itself stops after its
current step when no session is watching it any more. What a Stop left is kept in the session
(``_<stop key>_stopped``) and said above the button until the button is pressed again.

A flow is read first (:func:`train_state`: a slide measures it before it lays the slide out), then drawn
(:func:`train_flow`).
"""
from __future__ import annotations

from typing import NamedTuple

import streamlit as st

from ..compute import jobs
from ..compute.real import run, run_label
from ..server import run_gate
from ..server.sessions import session_id

POLL_S = 0.3  # how often a page following a run redraws it


class TrainState(NamedTuple):
    """What a train flow draws, known before it draws anything."""
    settings: tuple                  # the runs the button trains, in order
    key: str                         # the button's key; its row is "<key>_row"
    stop_key: str                    # the Stop button's key
    runs: tuple                      # the finished run of each settings, None where it is missing
    job: jobs.Job | None             # the job this session follows; None when none trains or a Stop left it
    held: jobs.Snapshot | None       # where a Stop left the job, while the settings are those it trained

    @property
    def missing(self) -> int:
        return sum(r is None for r in self.runs)

    @property
    def running(self) -> bool:
        return self.job is not None


def train_state(settings: tuple, key: str, stop_key: str | None = None) -> TrainState:
    """The flow of ``settings`` for this run of the script; a click on its Stop is handled here, before any drawing."""
    stop_key = stop_key or f"{key}_stop"
    _take_stop(stop_key, jobs.job_for(settings))
    held = st.session_state.get(f"_{stop_key}_stopped")
    held = held[1] if held and held[0] == settings else None
    runs = tuple(run(s) for s in settings)
    job = jobs.job_for(settings) if None in runs and held is None else None
    return TrainState(settings, key, stop_key, runs, job, held)


def train_flow(flow: TrainState, label: str, draw, *, help: str | None = None, prompt: str = "",
               failed: str = "The run failed") -> tuple | None:
    """Every run at once if the store has them; else what a Stop left, the button, and a live job followed.

    The button (greyed while a job trains, with Stop beside it, so nothing on the screen moves) and
    ``prompt`` share one row. While a job trains, ``draw(snapshot, i)`` redraws under the row until
    it ends, then the script reruns. Returns ``flow.runs`` when the caller draws the rest (every run
    finished, or none training), None when the job failed (the message is drawn).
    """
    if not flow.missing:
        return flow.runs
    if flow.held is not None:
        _stopped_note(flow.held)
    row = st.container(horizontal=True, gap="small", vertical_alignment="center", key=f"{flow.key}_row")
    if row.button(label, key=flow.key, type="primary", icon=":material/play_arrow:", disabled=flow.running, help=help):
        st.session_state.pop(f"_{flow.stop_key}_stopped", None)
        try:
            jobs.submit(flow.settings, session_id())
        except jobs.Busy as e:
            st.error(str(e))
        else:
            st.rerun()  # the next run draws Stop, the progress and the live view
    if not flow.running:
        if prompt:
            row.markdown(prompt)
        return flow.runs
    snap = follow(flow.job, draw, "Training", flow.stop_key, row)
    if snap.state == "failed":
        st.error(f"{failed}: {snap.error}")
        return None
    st.rerun()  # the finished runs, drawn from the store


def follow(job: jobs.Job, draw, label: str, stop_key: str, stop_where=None) -> jobs.Snapshot:
    """Redraw ``draw(snapshot, i)`` until the job finishes, under a Stop button and a progress bar.

    A click on Stop (or anything else) reruns the script, which ends this loop at once; the next run
    hands the click to :func:`train_state` before anything is drawn. ``stop_where`` is the container for the
    Stop button (beside the button that started the run, so nothing on the page moves).
    """
    if not stop_key.endswith("_stop"):  # the browser's key handler (screen.py) knows a followed job by it
        raise ValueError(f"a Stop button's key ends with _stop, not {stop_key!r}")
    jobs.watch(job, session_id())
    (stop_where or st).button("Stop", key=stop_key, icon=":material/stop:", help="Stop this run after its current step")
    bar = st.empty()
    body = st.empty()
    i = 0
    while True:
        snap = job.snapshot()
        frac = snap.done / max(snap.total, 1)
        if snap.live is not None and snap.live.settings.steps:
            frac += len(snap.live.losses) / snap.live.settings.steps / max(snap.total, 1)
        status = (f"Waiting: {snap.ahead} job{'s' if snap.ahead != 1 else ''} ahead of this one" if snap.state == "queued"
                  else f"{label}: run {min(snap.done + 1, snap.total)} of {snap.total}"
                  + (f", {run_label(snap.live.settings)} on {snap.live.settings.task}, step "
                     f"{len(snap.live.losses)} of {snap.live.settings.steps}" if snap.live else ""))
        bar.progress(min(frac, 1.0), text=status)
        with body.container():
            draw(snap, i)
        if snap.finished:
            bar.empty()
            return snap
        i += 1
        run_gate.sleep(POLL_S)  # the job trains on its own thread; the students' runs go meanwhile


def _take_stop(key: str, job: jobs.Job | None) -> None:
    """If this run follows a click on ``key``'s Stop, stop following ``job``: the worker stops it after its
    current step unless another session still follows it. What it had done is kept for the stopped note."""
    if job is None or not st.session_state.get(key):
        return
    snap = job.snapshot()
    job.release(session_id())
    with run_gate.released():  # the worker finishes its step; other runs go meanwhile
        job.wait(2.0)
    st.session_state[f"_{key}_stopped"] = (job.settings, job.snapshot() if job.finished_event.is_set() else snap)


def _stopped_note(snap: jobs.Snapshot) -> None:
    """Say where a stopped job got to."""
    steps = len(snap.live.losses) if snap.live else 0
    st.warning(f"Stopped after {snap.done} finished run{'s' if snap.done != 1 else ''}"
               + (f" and {steps} steps of the next" if snap.live else "")
               + ". A stopped run is not kept: press the button again to start over.", icon=":material/stop_circle:")
