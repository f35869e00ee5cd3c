"""Script runs take turns: a few at a time, first come first served, instead of all at once.

Streamlit gives every session's run a thread of its own, and Python's threads share one interpreter
lock, which they pass round every few milliseconds. When a class acts together (the lecturer says
"now set r to 4"), 50 runs of ~25 ms each then share the core evenly and all finish together, about
1.2 s after they began, so every student waits the whole burst. With a fixed think time they also
come back together, and the class stays in lock-step: measured with ``bench/class_load.py`` (50
students, 5 s think time), after one to three minutes every rerun waited ~1.2 s before its first
message, the core only a quarter busy between bursts (``docs/PERFORMANCE.md``, "Lock-step").

:func:`install` wraps ``ScriptRunner._run_script`` once per process, so that at most
:data:`SLOTS` script threads run a page at once and the others wait their turn in arrival order.
A burst is then served one after another: the first student's run ends after ~25 ms, the last
one's after the burst, and their next moves no longer arrive together. Two slots per core, not one,
so that one long run (a cache miss, a stage being played) slows the others rather than stopping them.

Sessions not yet let in by ``load_shedding.admit`` wait in a second line, served only when the first is
empty: 500 sockets opening at once otherwise queued their first pages ahead of the class's reruns,
and the class's p95 rose to 2.1–3.1× its p95 alone (tests/test_bad_load.py allows 2×). Such a run
also runs alone: it takes a slot only when no run holds one, and the class's next run waits for it
(a first page costs ~70 ms of CPU) instead of sharing the interpreter lock with it. Shared, every
message the student's run sends (~40 a run) hands the lock over and waits up to the switch interval
(5 ms) to get it back. Measured with 500 sockets opening (docs/bench_bad_load.md, 2026-12-07):
the class's p95 went from 2.8–3.8× its p95 alone to 2.4× with this alone, the rest of the way with
``load_shedding.install_connection_limit``.

A run that sleeps (:func:`sleep`: pacing, a session waiting to be admitted, a played stage, a page
following a training job) gives its slot back while it sleeps. A run that waited
:data:`MAX_WAIT_S` for a slot runs anyway, so a stuck run cannot hold the class.

``LORA_RUN_SLOTS`` sets the slots (0: no gate). Pinned to streamlit 1.67.0 (requirements.txt);
``tests/test_run_gate.py`` fails if Streamlit stops running pages through ``_run_script``.
"""
from __future__ import annotations

import collections
import logging
import os
import threading
import time
from contextlib import contextmanager

from streamlit.runtime.scriptrunner.script_runner import ScriptRunner
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from . import env

_LOGGER = logging.getLogger(__name__)
_ORIGINAL = ScriptRunner._run_script


def default_slots() -> int:
    """Two per core this process may use (its affinity: one core when the server is pinned to one)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity
        cores = os.cpu_count() or 1
    return 2 * cores


SLOTS = env.number("LORA_RUN_SLOTS", default_slots(), integer=True)
MAX_WAIT_S = 10.0


class Gate:
    """At most ``slots`` holders; the others wait in arrival order (a FIFO of events, not a bare semaphore,
    whose waiters the OS wakes in no promised order). Re-entrant per thread: a holder entering again is a no-op.

    Two lines: a slot goes to the first of the main line, and to the first of the ``later`` line only when the
    main line is empty and no run holds a slot; that run then holds the gate alone until it leaves (a class
    already at work is served before the first pages of sessions still arriving, and never beside them)."""

    def __init__(self, slots: int):
        self.slots = slots
        self._lock = threading.Lock()
        self._holders: set[int] = set()
        self._alone: int | None = None  # the holder from the later line, which holds the gate alone
        self._lines: tuple[collections.deque, collections.deque] = (collections.deque(), collections.deque())
        self.waited = 0     # entries that had to wait (for the tests and the benchmark)
        self.timed_out = 0  # entries that gave up waiting and ran anyway

    def held(self) -> bool:
        return threading.get_ident() in self._holders

    def busy(self) -> tuple[int, int]:
        """(holders, waiting in either line) now."""
        with self._lock:
            return len(self._holders), sum(map(len, self._lines))

    def enter(self, max_wait: float = MAX_WAIT_S, later: bool = False) -> bool:
        """Take a slot, waiting in line for one (the ``later`` line if asked); False if ``max_wait`` passed first
        (the caller runs anyway)."""
        me = threading.get_ident()
        with self._lock:
            if me in self._holders:
                return True
            if (not any(self._lines) and not self._holders) if later else (not self._lines[0] and self._free()):
                self._take(me, later)
                return True
            turn = (me, threading.Event())
            line = self._lines[1 if later else 0]
            line.append(turn)
            self.waited += 1
        if turn[1].wait(max_wait):
            return True
        with self._lock:
            if turn[1].is_set():  # handed a slot just as the wait ended
                return True
            line.remove(turn)
            self.timed_out += 1
        _LOGGER.warning("a script run waited %.0f s for a slot and runs without one", max_wait)
        return False

    def leave(self) -> None:
        """Give this thread's slot to the first in line (or back to the pool)."""
        me = threading.get_ident()
        with self._lock:
            if me not in self._holders:
                return
            self._holders.discard(me)
            if self._alone == me:
                self._alone = None
            while self._free() and self._lines[0]:
                ident, event = self._lines[0].popleft()
                self._take(ident, False)
                event.set()
            if not self._holders and self._lines[1]:
                ident, event = self._lines[1].popleft()
                self._take(ident, True)
                event.set()

    def _free(self) -> bool:
        """Whether a main-line run may take a slot now (the lock is held)."""
        return self._alone is None and len(self._holders) < self.slots

    def _take(self, ident: int, alone: bool) -> None:
        self._holders.add(ident)
        if alone:
            self._alone = ident


GATE = Gate(SLOTS)


def sleep(seconds: float) -> None:
    """``time.sleep`` for a page run: its slot goes to the next run in line while it sleeps."""
    if seconds <= 0:
        return
    if not GATE.held():
        time.sleep(seconds)
        return
    later = _waits_later()  # a new session sleeping in load_shedding.admit queues in the later line again
    GATE.leave()
    try:
        time.sleep(seconds)
    finally:
        GATE.enter(later=later)


@contextmanager
def released():
    """The block waits on something other than the CPU (another thread's work): it holds no slot meanwhile."""
    if not GATE.held():
        yield
        return
    GATE.leave()
    try:
        yield
    finally:
        GATE.enter()


_later = None  # install's predicate: does this session's run wait in the later line?


def _waits_later(session_state=None) -> bool:
    if _later is None:
        return False
    if session_state is None:
        ctx = get_script_run_ctx(suppress_warning=True)
        if ctx is None:
            return False
        session_state = ctx.session_state
    return bool(_later(session_state))


def _run_script(self, rerun_data):
    """Streamlit's run of a page (its callbacks, the script and the clean-up after it), inside a slot."""
    # held or not, the run goes on: a slot that did not come in time is not worth a stuck page
    GATE.enter(later=_waits_later(self._session_state))
    try:
        return _ORIGINAL(self, rerun_data)
    finally:
        GATE.leave()


def install(later=None) -> None:
    """Wrap ``ScriptRunner._run_script`` once per process (a no-op with ``LORA_RUN_SLOTS=0``).

    ``later(session_state) -> bool``: whether a session's runs wait in the later line (app.py passes
    ``load_shedding.arriving``: sessions not yet let in by ``load_shedding.admit``)."""
    global _later
    _later = later
    if SLOTS <= 0 or ScriptRunner._run_script is _run_script:
        return
    ScriptRunner._run_script = _run_script
