"""The protocol load client (bench/stclient.py) against a real `streamlit run app.py`: no browser.

Three sessions, each with a link of its own, open at once and each moves a slider of its own; every
session must then show exactly its own numbers (computed here through ``lora_core``), keep its other
controls, carry its own settings in the link the server wrote, and show no exception. The class
load's own check (bench/class_load.py) must also refuse another session's numbers.
"""
from __future__ import annotations

import asyncio
import sys
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from stclient import Session, SessionError  # noqa: E402 - after bench/ is put on sys.path

from helpers import heatmap_z, run_async  # noqa: E402 - after bench/ is put on sys.path

pytestmark = pytest.mark.timeout(120)

EXPLORE = ({"preset": "seed", "seed": 101, "n": 3, "d": 5, "k": 3, "r": 1, "alpha": 2.0},
           {"preset": "random", "seed": 202, "n": 5, "d": 4, "k": 4, "r": 2, "alpha": 3.0},
           {"preset": "random", "seed": 303, "n": 2, "d": 6, "k": 2, "r": 2, "alpha": 1.5})


def expected_q(s: dict) -> np.ndarray:
    from lora_core import build_example, lora_forward, lora_scaling

    ex = build_example(s["preset"], s["seed"], s["n"], s["d"], s["k"], s["r"])
    return lora_forward(ex.X, ex.W, ex.A, ex.B, scaling=lora_scaling(s["alpha"], s["r"])).q.numpy()


def assert_own_numbers(session: Session, s: dict) -> None:
    title = f"Q = X·(W_Q + ΔW_Q) ({s['n']}×{s['k']})"
    figs = session.figures()
    assert title in figs, f"no {title!r} in {list(figs)}"
    np.testing.assert_allclose(heatmap_z(figs[title]), expected_q(s), rtol=1e-9, atol=1e-12)
    link = urllib.parse.parse_qs(session.query_string)
    for key in ("seed", "n", "d", "k", "r"):
        assert link[key] == [str(s[key])], f"{key}: link {link.get(key)}, expected {s[key]}"
    assert session.exceptions() == []


async def _three_sessions(url: str) -> list[tuple]:
    queries = [urllib.parse.urlencode({**s, "view": "q"}) for s in EXPLORE]
    sessions = await asyncio.gather(*(Session.open(url, "/", q) for q in queries))
    try:
        opened = [dict(s) for s in EXPLORE]
        for sess, s in zip(sessions, opened):
            assert_own_numbers(sess, s)
        moved = [dict(s, n=s["n"] + 1) for s in EXPLORE]
        runs = await asyncio.gather(*(sess.set_widget("n", s["n"]) for sess, s in zip(sessions, moved)))
        for sess, s in zip(sessions, moved):
            assert_own_numbers(sess, s)
        # a second control: the first one's new value is kept, as a browser keeps it
        moved = [dict(s, alpha=s["alpha"] + 0.5) for s in moved]
        runs += await asyncio.gather(*(sess.set_widget("alpha", s["alpha"]) for sess, s in zip(sessions, moved)))
        for sess, s in zip(sessions, moved):
            assert_own_numbers(sess, s)
            assert sess.value("n") == [float(s["n"])]
        return [(sess, s) for sess, s in zip(sessions, moved)], runs
    finally:
        await asyncio.gather(*(sess.close() for sess in sessions))


def test_three_sessions_each_get_their_own_numbers(app_url):
    pairs, runs = run_async(_three_sessions(app_url))
    assert len({sess.session_id for sess, _ in pairs}) == 3
    for run in runs:
        assert run.status == "FINISHED_SUCCESSFULLY" and run.exceptions == []
        assert run.messages > 0 and run.bytes > 0 and 0 < run.latency_s < 30
    assert all(not sess.errors for sess, _ in pairs)


async def _other_pages(url: str):
    import class_load

    out = []
    for page in ("attention", "training", "rank"):
        st = class_load.make_student(7, 5, page)
        path, query = st.path_query()
        sess = await Session.open(url, path, query)
        try:
            assert st.check(sess) is None, f"{page} on opening: {st.check(sess)}"
            key, value = st.next_move()
            run = await sess.set_widget(key, value)
            assert run.exceptions == [] and st.check(sess) is None, f"{page} after {key}={value}: {st.check(sess)}"
            other = class_load.make_student(8, 5, page)  # another student's settings: must not pass the check
            out.append((page, other.check(sess)))
        finally:
            await sess.close()
    return out


def test_other_pages_and_the_bleed_check(app_url):
    """Attention's checkbox, Training's step slider, Rank's sidebar: own numbers back; another's are refused."""
    for page, problem in run_async(_other_pages(app_url)):
        assert problem is not None, f"{page}: the class load's check accepted another student's numbers"


async def _unknown(url: str):
    sess = await Session.open(url, "/", "seed=4", screen=None)
    try:
        with pytest.raises(SessionError):
            await sess.set_widget("no_such_widget", 1)
        with pytest.raises(SessionError):
            await sess.set_widget("d", 7.5)  # not one of d's choices
        return sess.widget("n").kind, sess.widget("d").kind, sess.widget("rslora").kind, len(sess.first_load)
    finally:
        await sess.close()


def test_widgets_are_read_from_the_deltas(app_url):
    assert run_async(_unknown(app_url)) == ("slider", "select_slider", "toggle", 1)
