"""Following a training job from a page or a slide: a progress bar, a live redraw, Stop, and what a Stop leaves.

Jobs run on the server's worker (:mod:`lora_app.compute.jobs`); a script only watches them. A Stop (or any
other click) reruns the script, which ends the watching loop at once; the job itself stops after its
current step when no session is watching it any more.
"""
from __future__ import annotations

import streamlit as st

from ..compute import jobs
from ..server import run_gate
from ..server.sessions import session_id
from ..compute.real import run_label

POLL_S = 0.3  # how often a page following a run redraws it




def follow(job: jobs.Job, draw, label: str, stop_key: str, stop_where=None) -> jobs.Snapshot:
    """Redraw ``draw(snapshot, i)`` until the job finishes, under a Stop button and a progress bar.

    A click on Stop (or anything else) reruns the script, which ends this loop at once; the next run
    hands the click to :func:`take_stop` before anything is drawn. ``stop_where`` is the container for the
    Stop button (beside the button that started the run, so nothing on the page moves).
    """
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


def take_stop(key: str, job: jobs.Job | None) -> None:
    """If this run follows a click on ``key``'s Stop, stop following ``job``: the worker stops it after its
    current step unless another session still follows it. What it had done is kept for :func:`stopped_note`."""
    if job is None or not st.session_state.get(key):
        return
    snap = job.snapshot()
    job.release(session_id())
    with run_gate.released():  # the worker finishes its step; other runs go meanwhile
        job.wait(2.0)
    st.session_state[f"_{key}_stopped"] = (job.settings, job.snapshot() if job.finished_event.is_set() else snap)


def clear_stop(key: str) -> None:
    st.session_state.pop(f"_{key}_stopped", None)


def stopped_note(key: str, settings) -> jobs.Snapshot | None:
    """Say where a stopped job got to, while the settings are those it trained; returns its last snapshot."""
    held = st.session_state.get(f"_{key}_stopped")
    if held and held[0] == settings:
        snap = held[1]
        steps = len(snap.live.losses) if snap.live else 0
        st.warning(f"Stopped after {snap.done} finished run{'s' if snap.done != 1 else ''}"
                   + (f" and {steps} steps of the next" if snap.live else "")
                   + ". A stopped run is not kept: press the button again to start over.", icon=":material/stop_circle:")
        return snap
    return None
