"""Bad load must not take the server down for the others (issue 13, part 4).

The server tests (marked ``badload``; CI runs ``python -m pytest -m badload`` after the default run)
start a real ``streamlit run app.py`` per misbehaviour with bench/bad_load.py, put 8 well-behaved
Explore students on it (each checks its own numbers after every interaction), and measure their
p95 alone, while one client misbehaves, and alone again. The misbehaving client is either 500
websockets that send one rerun each and never read, or 3 sessions that send a rerun every
millisecond (and open a new session whenever the server closes one). The students' p95 under the
bad client must stay within 2× of their p95 alone (the larger of before and after: the same
machine's noise; a run beyond 2× is repeated once on a fresh server, see ``_run_and_check``), with
no error, no bleed, the server up and its memory bounded.

``BAD_LOAD_UNPROTECTED=1`` runs the same tests with the protections off (LORA_PACE_RATE=0 ...):
they fail, which is how this test was checked to guard them.

The unit tests of the carried button presses and of the new websockets' turns run in the default run.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402 - after bench/ is put on sys.path

from helpers import run_async  # noqa: E402 - after bench/ is put on sys.path
from lora_app.server import load_shedding  # noqa: E402 - after bench/ is put on sys.path

# --- a replaced rerun, without a server --------------------------------------------------------------------

def test_a_replaced_rerun_keeps_its_button_presses():
    older, newer = BackMsg(), BackMsg()
    press = older.rerun_script.widget_states.widgets.add(id="$$ID-a-train")
    press.trigger_value = True
    old_value = older.rerun_script.widget_states.widgets.add(id="$$ID-b-n")
    old_value.double_array_value.data[:] = [3.0]
    new_value = newer.rerun_script.widget_states.widgets.add(id="$$ID-b-n")
    new_value.double_array_value.data[:] = [4.0]
    load_shedding.carry_triggers(older, newer)
    got = {w.id: w for w in newer.rerun_script.widget_states.widgets}
    assert set(got) == {"$$ID-a-train", "$$ID-b-n"}
    assert got["$$ID-a-train"].trigger_value and list(got["$$ID-b-n"].double_array_value.data) == [4.0]


# --- new websockets wait their turn before the upgrade ---------------------------------------------------

def test_new_websockets_are_accepted_at_the_rate_and_one_that_would_wait_too_long_is_told_to_try_again(monkeypatch):
    """Burst 2, then 10 a second, at most 0.25 s of waiting: of 5 sockets opened at once, two are accepted at
    once, the next two 0.1 and 0.2 s later, and the fifth (0.3 s) is refused with 1013 before any upgrade."""
    import asyncio
    import time

    from starlette.exceptions import WebSocketException
    from starlette.websockets import WebSocket

    from lora_app.server.token_bucket import TokenBucket

    monkeypatch.setattr(WebSocket, "accept", WebSocket.accept)  # the wrapper is taken away again afterwards
    monkeypatch.setattr(load_shedding, "CONNECT_MAX_WAIT_S", 0.25)
    monkeypatch.setattr(load_shedding, "_CONNECTS", TokenBucket(10.0, 2, now=time.monotonic()))
    load_shedding.install_connection_limit()
    load_shedding.install_connection_limit()  # once per process: a second call wraps nothing more

    async def connect(i, t0, out):
        sent = []

        async def receive():
            return {"type": "websocket.connect"}

        async def send(message):
            sent.append((message["type"], time.monotonic() - t0))

        ws = WebSocket({"type": "websocket", "path": "/_stcore/stream", "headers": []}, receive, send)
        try:
            await ws.accept(subprotocol="streamlit")
        except WebSocketException as exc:
            out[i] = ("refused", exc.code)
        else:
            out[i] = sent[0]

    async def main():
        t0, out = time.monotonic(), {}
        await asyncio.gather(*(connect(i, t0, out) for i in range(5)))
        return out

    out = run_async(main())  # helpers.run_async: a worker that ran browser tests has an event loop running
    assert out[4] == ("refused", 1013)
    kinds = [out[i][0] for i in range(4)]
    times = [out[i][1] for i in range(4)]
    assert kinds == ["websocket.accept"] * 4
    # each in its turn: never before it (asyncio's sleeps are not early), and before the turn after it
    assert times[0] < 0.1 and times[1] < 0.1
    assert 0.1 <= times[2] < 0.2 and 0.2 <= times[3] < 0.3


# --- a real server under a misbehaving client --------------------------------------------------------

UNPROTECTED = os.environ.get("BAD_LOAD_UNPROTECTED") == "1"
PHASE_S = 15


def _scenario(kind: str, tmp_path: Path) -> dict:
    import bad_load

    return run_async(bad_load.scenario(kind, protected=not UNPROTECTED, students=8, duration=PHASE_S,
                                         think=(0.5, 1.5), seed=13, log_dir=tmp_path, after=10))


def _check(r: dict) -> bool:
    """Assert what no noise excuses; return whether the p95 stayed within 2×."""
    import bad_load

    print("\n" + bad_load.table([r]))
    assert r["server_up"], "the server went down"
    assert r["errors"] == 0 and r["bleed"] == 0, r["error_examples"]
    assert r["idle"]["interactions"] >= 40 and r["under"]["interactions"] >= 40, "too few interactions for a p95"
    assert r["rss_peak_mib"] - r["rss_idle_peak_mib"] < 200, "the server's memory grew by 200 MiB or more"
    return r["under"]["p95"] <= 2 * max(r["idle"]["p95"], r["after"]["p95"])


def _run_and_check(kind: str, tmp_path: Path) -> dict:
    """The scenario; once more on a fresh server if the p95 was beyond 2×.

    The server's core is shared with whatever else the machine runs (other test servers, here): a
    neighbour's burst during the bad phase alone reads as the bad client's doing. A real regression
    fails both runs (unprotected, the flood starves the students in every run).
    """
    r = _scenario(kind, tmp_path)
    if not _check(r):
        r = _scenario(kind, tmp_path)
        idle = max(r["idle"]["p95"], r["after"]["p95"])
        assert _check(r), (f"twice beyond 2×: the students' p95 went from {1000 * idle:.0f} ms alone to "
                           f"{1000 * r['under']['p95']:.0f} ms under {kind}")
    return r


@pytest.mark.badload
@pytest.mark.timeout(300)
def test_500_sessions_that_never_read_leave_the_others_their_p95(tmp_path):
    r = _run_and_check("never-read", tmp_path)
    assert r["bad"] and r["bad"]["opened"] + r["bad"]["failed"] == 500


@pytest.mark.badload
@pytest.mark.timeout(300)
def test_a_flood_of_reruns_leaves_the_others_their_p95(tmp_path):
    r = _run_and_check("flood", tmp_path)
    assert r["bad"] and r["bad"]["reruns_sent"] > 0
    if not UNPROTECTED:
        log = (tmp_path / "bad_load_flood_on.log").read_text(errors="replace")
        assert "closed a session that sent more than" in log, "the flooding sessions were never cut off"
