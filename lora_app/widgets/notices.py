"""What was clamped, dropped or refused, said at the top of the page until the user next acts."""
from __future__ import annotations


import streamlit as st


from ..echo import echo
from ..server import widget_guard
from . import screen



def show_notices() -> None:
    """Say what was clamped or ignored, at the top of the page, until the user next acts.

    The rerun that follows the browser's report of its size (screen.py) is not the user acting:
    it shows the same notices again, or they would be gone a tenth of a second after the page opened.
    """
    notices = st.session_state.pop("_notices", []) + [
        f"The control {echo(name, 40)} sent a value this page cannot read; it was ignored, and the control "
        "keeps its last value." for name in widget_guard.take_refusals(st.session_state)]
    if screen.is_screen_rerun():
        notices = st.session_state.get("_shown_notices", []) + notices
    st.session_state["_shown_notices"] = notices
    for notice in notices:
        st.warning(notice, icon=":material/warning:")
