"""Which session a run belongs to, and Streamlit's record of the server's sessions (its websockets).

Pinned to streamlit 1.67.0: ``Runtime._session_mgr`` and ``WebsocketSessionManager`` are private.
tests/test_bad_load.py (a real server's sessions, capped and paced) and tests/test_app_real.py (the session that
follows a run) fail if these stop answering.
"""
from __future__ import annotations


def session_id() -> str:
    """This run's session id ("no-session" outside a session: a bare script, a benchmark)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"


def session_manager():
    """Streamlit's websocket session manager, or None where there is none (AppTest runs a script with a mock)."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.websocket_session_manager import WebsocketSessionManager

    mgr = getattr(Runtime.instance(), "_session_mgr", None) if Runtime.exists() else None
    return mgr if isinstance(mgr, WebsocketSessionManager) else None


def session_info():
    """This session's id and Streamlit's record of it (its client: the websocket), or (None, None)."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():
        return None, None
    mgr = session_manager()
    return ctx.session_id, mgr.get_active_session_info(ctx.session_id) if mgr is not None else None


def active_sessions() -> int:
    """How many sessions have a socket open on this server now."""
    mgr = session_manager()
    return len(mgr.list_active_sessions()) if mgr is not None else 0
