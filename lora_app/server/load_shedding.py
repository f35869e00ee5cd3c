"""Load shedding: one session must not take the server from the others.

The defect: Streamlit runs every session's script in a thread of one process, and nothing in
Streamlit 1.67 stops one session from costing the others:
- rerun as fast as it can (a slider "moving" every millisecond): with ``runner.fastReruns`` Streamlit
  stops the running script and starts a new script thread for every message. :func:`install_rerun_limit`
  coalesces a session's reruns to a few a second on the event loop, and closes a session that keeps
  flooding; :func:`pace` is a backstop at the top of each run;
- open hundreds of sessions: each one's first run is a full page, and each holds its widget tree and
  its unread messages in memory. :func:`admit` caps the sessions and spaces new sessions' first runs;
  :func:`pace` does not run a session whose browser has not read what it was sent.

Measured with ``bench/bad_load.py`` (500 never-reading websockets, a reconnecting rerun flood, 8
students' p95 alone, under and after): numbers in docs/bench_bad_load.md. Every rate is one
:class:`~lora_app.server.token_bucket.TokenBucket`.

Pinned to streamlit 1.67.0 (requirements.txt): ``AppSession.handle_backmsg`` is wrapped, and the
session manager is read through :mod:`lora_app.server.sessions`. ``tests/test_bad_load.py`` (marker
``badload``, run by .ci/run) fails if a flood or a crowd of sockets again slows the class beyond 2×.
"""
from __future__ import annotations

import logging
import threading
import time

from . import env, run_gate, sessions
from .token_bucket import TokenBucket

_LOGGER = logging.getLogger(__name__)

PACE_KEY = "_pace_bucket"
ADMITTED_KEY = "_admitted"
PACE_BURST = 30        # run starts a session may make at once
PACE_RATE = env.number("LORA_PACE_RATE", 8.0)   # run starts per second, sustained (0: no pace)
PACE_MAX_SLEEP_S = 0.25
# a session whose socket holds this many messages it has not read gets no new run (one Explore run is
# ~40 messages; Streamlit itself closes a session at 500, by then holding 500 messages in memory)
BACKLOG_MAX = 120
MAX_SESSIONS = env.number("LORA_MAX_SESSIONS", 300, integer=True)  # docs/bench_class_load.md: one core holds 50-100 active
# new sessions' first runs, server-wide: a burst, then a rate; a session that would wait longer is told to try again
ARRIVAL_BURST = 10
ARRIVAL_RATE = env.number("LORA_ARRIVAL_RATE", 3.0)
ARRIVAL_MAX_WAIT_S = 60.0  # a whole class of 150 opening at once still gets in, later; beyond, "try again"
_ARRIVALS = TokenBucket(ARRIVAL_RATE, ARRIVAL_BURST, now=0.0)
_ARRIVAL_LOCK = threading.Lock()
BUSY_TEXT = "Many students are opening this page at once. Try again in a minute."
FULL_TEXT = ("This server is full: {n} students are already on it. Try again in a minute, "
             "or ask your teacher for another link.")






def unread(info) -> int:
    """Messages Streamlit holds for this session that its socket could not yet send (the browser is not reading)."""
    queue = getattr(getattr(info, "client", None), "_send_queue", None)
    return queue.qsize() if queue is not None else 0




def pace(session_state) -> None:
    """Call first in every run: slow a session that reruns faster than a person can, for long; stop one that does not read.

    A session starts up to :data:`PACE_BURST` runs at once, then :data:`PACE_RATE` a second: beyond that
    the run first sleeps (at most :data:`PACE_MAX_SLEEP_S`; a sleep holds neither the GIL nor the CPU),
    so a flood of reruns costs the server at most PACE_RATE runs a second, most of them interrupted by
    the next message before they draw anything. A session whose socket holds :data:`BACKLOG_MAX` unsent
    messages is not run at all (``st.stop``): its browser is not reading, and another run would only add
    to what the server holds for it.
    """
    import streamlit as st

    if sessions.session_manager() is None:
        return  # no server's sessions (AppTest): nothing to share
    _, info = sessions.session_info()
    if info is not None and unread(info) >= BACKLOG_MAX:
        _LOGGER.warning("a session with %d unread messages was not run", unread(info))
        st.stop()
    if PACE_RATE <= 0:
        return
    bucket = session_state.get(PACE_KEY)
    now = time.monotonic()
    if bucket is None:
        bucket = session_state[PACE_KEY] = TokenBucket(PACE_RATE, PACE_BURST, now)
    wait = bucket.take(now, PACE_MAX_SLEEP_S)
    if wait:
        run_gate.sleep(wait)  # the sleep gives its slot to the next run in line


# rerun messages, per session, on the server's event loop (before Streamlit starts a script thread for one):
# a burst, then a rate; beyond it the latest message waits its turn and replaces any that was waiting
RERUN_BURST = 5
RERUN_RATE = env.number("LORA_RERUN_RATE", 2.0)
# a session sending rerun messages faster than any person or browser can, for seconds on end, is cut off: reading
# each message costs the server's event loop ~0.3 ms, so a few such sessions would take a third of a core even
# coalesced (a held arrow key repeats ~30 times a second)
FLOOD_BURST = 60
FLOOD_RATE = 60.0
CUT_PENALTY = 3.0  # new-session turns a cut-off costs (see admit): a flooder that reconnects is slowed, server-wide


def carry_triggers(older, newer) -> None:
    """Button presses of a rerun message that is replaced: the browser sends a press once, so keep it."""
    have = {w.id for w in newer.rerun_script.widget_states.widgets}
    for w in older.rerun_script.widget_states.widgets:
        if w.WhichOneof("value") in ("trigger_value", "string_trigger_value", "chat_input_value") and w.id not in have:
            newer.rerun_script.widget_states.widgets.append(w)


def _cut_off(session_id: str) -> None:
    """Close a session's websocket (1008, policy violation): it sent reruns beyond any person's rate."""
    import asyncio

    _LOGGER.warning("closed a session that sent more than %.0f rerun messages a second", FLOOD_RATE)
    with _ARRIVAL_LOCK:  # a flooder opens another session at once: new sessions queue longer for a while
        _ARRIVALS.tokens -= CUT_PENALTY
    mgr = sessions.session_manager()
    info = mgr.get_active_session_info(session_id) if mgr is not None else None
    ws = getattr(getattr(info, "client", None), "_websocket", None)
    if ws is not None:
        asyncio.get_running_loop().create_task(ws.close(code=1008))


def install_rerun_limit() -> None:
    """Wrap ``AppSession.handle_backmsg`` once per process: a session's rerun messages beyond the rate are coalesced.

    Streamlit (``runner.fastReruns``) stops the running script and starts a new script thread for every
    rerun message, so a client sending a new slider value every millisecond keeps the server starting
    threads. Here a session may send :data:`RERUN_BURST` reruns at once, then :data:`RERUN_RATE` a
    second; a message beyond that is held and sent on when the session has a turn again, and a newer
    message replaces it (with its button presses carried over), as Streamlit itself merges the reruns
    of a running script: the last state wins, and nothing a person sent is lost.
    """
    from streamlit.runtime.app_session import AppSession

    original = AppSession.handle_backmsg
    if getattr(original, "_lora_guard", False) or RERUN_RATE <= 0:
        return

    def flush(self) -> None:
        state = self._lora_reruns
        msg, state["pending"] = state["pending"], None
        if msg is not None:
            state["bucket"].take(time.monotonic(), PACE_MAX_SLEEP_S)
            original(self, msg)

    def handle_backmsg(self, msg):
        if msg.WhichOneof("type") != "rerun_script" or msg.rerun_script.fragment_id:
            return original(self, msg)
        now = time.monotonic()
        state = self.__dict__.setdefault("_lora_reruns", {"bucket": TokenBucket(RERUN_RATE, RERUN_BURST, now), "pending": None,
                                                            "flood": TokenBucket(FLOOD_RATE, FLOOD_BURST, now), "cut": False})
        if state["cut"]:
            return None
        if state["flood"].overdrawn(now):
            state["cut"], state["pending"] = True, None
            _cut_off(self.id)
            return None
        if state["pending"] is not None:
            carry_triggers(state["pending"], msg)
            state["pending"] = msg
            return None
        if state["bucket"].take_now(time.monotonic()):
            return original(self, msg)
        state["pending"] = msg
        import asyncio
        asyncio.get_running_loop().call_later(state["bucket"].wait_for_next(time.monotonic()), flush, self)
        return None

    handle_backmsg._lora_guard = True
    AppSession.handle_backmsg = handle_backmsg






# new websockets, server-wide, on the event loop: each costs the loop ~7 ms (the upgrade, Streamlit's session, its
# first messages) on a 2-core machine of 2026-12; a burst, then a rate; one that would wait longer is turned away
CONNECT_BURST = 50
CONNECT_RATE = env.number("LORA_CONNECT_RATE", 10.0)
CONNECT_MAX_WAIT_S = 10.0  # Streamlit's browser client gives a websocket 15 s, then connects again
_CONNECTS = TokenBucket(CONNECT_RATE, CONNECT_BURST, now=0.0)


def install_connection_limit() -> None:
    """Wrap starlette's ``WebSocket.accept`` once per process: new websockets wait their turn before Streamlit makes a session.

    A browser opens one websocket per tab; hundreds opened in seconds (a script, or a class reconnecting
    at once after a network cut) each cost the event loop the upgrade, a new ``AppSession`` and its
    first run's messages, ahead of the class's reruns. Here they are accepted :data:`CONNECT_RATE` a
    second after a burst of :data:`CONNECT_BURST`; a socket waiting costs a coroutine, not the loop.
    One that would wait more than :data:`CONNECT_MAX_WAIT_S` is refused before the upgrade (starlette
    closes it with 1013, "try again later": Streamlit's endpoint never makes a session for it), and
    Streamlit's browser client connects again by itself. A socket already open is never delayed.

    Pinned to starlette 1.10.0 (requirements.txt; Streamlit 1.67's endpoint calls ``websocket.accept``
    before ``runtime.connect_session``): ``tests/test_bad_load.py`` fails if the wrapper no longer delays
    or refuses, and the ``badload`` suite if the class's p95 again triples while 500 sockets open.
    """
    import asyncio

    from starlette.exceptions import WebSocketException
    from starlette.websockets import WebSocket

    original = WebSocket.accept
    if getattr(original, "_lora_guard", False) or CONNECT_RATE <= 0:
        return

    async def accept(self, *args, **kwargs):
        wait = _CONNECTS.reserve(time.monotonic(), CONNECT_MAX_WAIT_S)
        if wait is None:
            _LOGGER.warning("turned a new websocket away: more than %.0f s of new ones are waiting", CONNECT_MAX_WAIT_S)
            raise WebSocketException(code=1013, reason="The server is busy. Try again later.")
        if wait:
            await asyncio.sleep(wait)
        return await original(self, *args, **kwargs)

    accept._lora_guard = True
    WebSocket.accept = accept


def arriving(session_state) -> bool:
    """Whether this session has not yet been let in by :func:`admit` (its runs wait behind the class's: run_gate)."""
    return ADMITTED_KEY not in session_state


def admit(session_state, limit: int | None = None) -> None:
    """Let a session in while the server holds at most ``limit`` (``LORA_MAX_SESSIONS``) sessions; else say it is full and stop.

    A session let in also waits its turn among new sessions: their first full runs start at most
    :data:`ARRIVAL_RATE` a second after a burst of :data:`ARRIVAL_BURST` (a whole class opening the
    link at once waits a few seconds), so hundreds of sessions opened at once cost the students already
    on the server a bounded share of it. A session that would wait more than :data:`ARRIVAL_MAX_WAIT_S`
    is told the server is busy instead. A session let in once stays in: only the sessions beyond the
    cap see a notice, and theirs is checked again on each of their runs ("Try again"). 0: no cap.
    """
    import streamlit as st

    limit = MAX_SESSIONS if limit is None else limit
    if limit <= 0 or session_state.get(ADMITTED_KEY) or sessions.session_manager() is None:
        return  # no cap, already in, or no server's sessions (AppTest)
    n = sessions.active_sessions()
    if n > limit:
        st.warning(FULL_TEXT.format(n=n - 1))
        st.button("Try again", key="_full_retry")
        st.stop()
    if ARRIVAL_RATE > 0:
        with _ARRIVAL_LOCK:
            wait = _ARRIVALS.reserve(time.monotonic(), ARRIVAL_MAX_WAIT_S)
        if wait is None:
            st.warning(BUSY_TEXT)
            st.button("Try again", key="_full_retry")
            st.stop()
        run_gate.sleep(wait)
    session_state[ADMITTED_KEY] = True
