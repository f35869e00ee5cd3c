"""Everything that guards or patches Streamlit's runtime, and the order it goes in.

Every use of Streamlit's private runtime (``streamlit.runtime``, ``streamlit.web``, ``streamlit.proto``)
lives in this package. Each patch is pinned to streamlit 1.67.0 (requirements.txt), says in its
docstring what defect of Streamlit it answers and what was measured, and names the test that fails
when Streamlit changes under it.

app.py calls :func:`install` at the top of every run, before anything is drawn, and :func:`admit`
right after ``st.set_page_config``. The order, and why:

1. :func:`load_shedding.pace`: a session rerunning faster than a person can is slowed, and one whose
   browser does not read what it is sent is not run at all. First, so such a run costs nothing more.
2. :func:`load_shedding.install_rerun_limit`: a flood of rerun messages from one session is coalesced
   to a few a second on the event loop, before Streamlit starts a script thread for each.
   :func:`load_shedding.install_connection_limit`: new websockets are accepted 10 a second after a burst of 50,
   server-wide, before Streamlit makes a session for each (hundreds at once took the event loop).
3. :func:`widget_guard.install`: forged widget messages are refused before Streamlit reads them
   (from the next rerun on: this run's messages were read before the script started).
4. :func:`widget_gc.install`: a widget that is gone takes its metadata and callback with it.
5. :func:`cache_locks.install`: a cached value, once written, leaves no per-key lock behind.
6. :func:`run_gate.install`: page runs take turns in arrival order, two per core; sessions not yet
   admitted (``load_shedding.arriving``) wait behind the class's reruns. Last, so that the patches
   above are in place before any run waits in its line.
7. The garbage collector's freeze (:func:`_freeze_collector`), once per process.

Steps 2-7 happen once per process; calling :func:`install` again only paces the run.
"""
from __future__ import annotations

import gc

_FROZEN = False


def _freeze_collector() -> None:
    """Streamlit's full garbage collection after a run took 140-160 ms with torch, pandas and plotly loaded.

    Their objects live as long as the process, so import them once and freeze them out of the
    collector's sight (``runner.postScriptGC`` is also off: .streamlit/config.toml).
    """
    global _FROZEN
    if _FROZEN:
        return
    import pandas  # noqa: F401  (imported for the freeze)
    import plotly.graph_objects  # noqa: F401  (imported for the freeze)
    import torch  # noqa: F401  (imported for the freeze)

    gc.collect()
    gc.freeze()
    _FROZEN = True


def install(session_state) -> None:
    """Call first in every run of app.py: pace this run, then install the patches (once per process)."""
    from . import cache_locks, load_shedding, run_gate, widget_gc, widget_guard  # here: importing the package stays light

    load_shedding.pace(session_state)
    load_shedding.install_rerun_limit()
    load_shedding.install_connection_limit()
    widget_guard.install()
    widget_gc.install()
    cache_locks.install()
    run_gate.install(later=load_shedding.arriving)
    _freeze_collector()


def take_refusals(session_state) -> list[str]:
    """The keys of the controls whose forged message the widget guard refused since the last call, for a notice."""
    from . import widget_guard

    return widget_guard.take_refusals(session_state)


def admit(session_state) -> None:
    """Call right after ``st.set_page_config``: beyond ``LORA_MAX_SESSIONS`` sessions, new ones are told the server is full."""
    from . import load_shedding

    load_shedding.admit(session_state)
