"""The Training page's stepper: Back, Next, Step, Play and Reset, the step scrubber, the stage, and their keys."""
from __future__ import annotations

import streamlit as st

from ..config import STAGES
from ..server import run_gate
from ..text import training as text
from ..widgets import screen

PLAY_INTERVAL_S = 0.6



def _move(delta: int, n_steps: int) -> None:
    """One stage forward or back; past the last stage it moves on to the next step's forward pass."""
    ss = st.session_state
    i, step = STAGES.index(ss["stage"]) + delta, ss["step"]
    if i >= len(STAGES):
        i, step = (0, step + 1) if step < n_steps else (len(STAGES) - 1, step)
    elif i < 0:
        i, step = (len(STAGES) - 1, step - 1) if step > 1 else (0, step)
    ss["stage"], ss["step"] = STAGES[i], step



def _next_step(n_steps: int) -> None:
    st.session_state["step"] = min(st.session_state["step"] + 1, n_steps)



def _toggle_play() -> None:
    st.session_state["playing"] = not st.session_state.get("playing", False)



def _reset() -> None:
    st.session_state.update(step=1, stage="forward", playing=False)



def before_widgets(n_steps: int) -> None:
    """Clamp the step to what the run holds and apply a pending play tick; runs before the widgets."""
    ss = st.session_state
    if ss.pop("_advance", False) and ss.get("playing"):
        ss["step"] = ss.get("step", 1) + 1
    ss["step"] = min(max(int(ss.get("step", 1)), 1), n_steps)
    if ss.get("stage") not in STAGES:
        ss["stage"] = "forward"
    # the keys counted in the browser (screen.py), every press in order: none is lost to a rerun in flight
    moves = {"next": lambda: _move(1, n_steps), "back": lambda: _move(-1, n_steps),
             "step": lambda: _next_step(n_steps), "play": _toggle_play, "reset": _reset}
    for action in screen.take_keys("training"):
        moves[action]()



def stepper(n_steps: int) -> None:
    # buttons as wide as their labels, wrapping onto a second line on a narrow screen: never cut to "P…"
    with st.container(horizontal=True, gap="small", vertical_alignment="center", key="stepper"):
        st.button("◀ Back", on_click=_move, args=(-1, n_steps), shortcut="Left", help="Previous stage")
        st.button("Next ▶", on_click=_move, args=(1, n_steps), shortcut="Right", type="primary",
                  help="Next stage; after the last stage, the next step")
        st.button("Step", icon=":material/skip_next:", on_click=_next_step, args=(n_steps,), shortcut="N",
                  help="Next optimisation step, same stage")
        playing = st.session_state.get("playing", False)
        # one key whatever the label: a button that changed its label would be a new widget, and P would
        # then press a button the server no longer knows (play could not be paused)
        st.button("Pause" if playing else "Play", icon=":material/pause:" if playing else ":material/play_arrow:",
                  on_click=_toggle_play, shortcut="P", key="play", help="Animate through the steps")
        st.button("Reset", icon=":material/restart_alt:", on_click=_reset, shortcut="Home", help="Back to step 1")
        st.caption("Keys: ← → stages · N next step · P play/pause · Home reset", width="content")
    if n_steps > 1:
        st.slider("Step t", 1, n_steps, key="step", persist_state="session",
                  help="Scrub through the run: it was trained once, and moving this only replays the step shown "
                       "from the nearest stored state; nothing is trained again.")
    st.radio("Stage", STAGES, key="stage", horizontal=True, format_func=text.STAGE_TITLES.get,
             persist_state="session", label_visibility="collapsed")



def play_tick(n_steps: int) -> None:
    """While playing, wait a moment and rerun one step further; stop at the end."""
    ss = st.session_state
    if not ss.get("playing"):
        return
    if ss["step"] >= n_steps:
        ss["playing"] = False
        return
    run_gate.sleep(PLAY_INTERVAL_S)  # another student's run goes meanwhile
    ss["_advance"] = True
    st.rerun()
