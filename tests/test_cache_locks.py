"""lora_app.server.cache_locks: a cached value, once written, leaves no per-key lock behind.

Checked on real ``st.cache_data`` functions, called outside a script run (as the caches allow): the
lock table stays empty however many keys pass through a small cache; a value asked for by several
threads at once is still computed once; without the hook Streamlit keeps a lock per key ever seen.
"""
from __future__ import annotations

import threading
import time

import streamlit as st
from streamlit.runtime.caching.cache_utils import CachedFunc

from lora_app.server import cache_locks


def _locks(fn) -> dict:
    """The per-key lock table of ``fn``'s cache (one function cache per st.cache_data function)."""
    info = fn._info
    from streamlit.runtime.caching.cache_utils import _make_function_key
    return info.get_function_cache(_make_function_key(info.cache_type, info.func))._value_locks


def _small_cache():
    @st.cache_data(max_entries=4, show_spinner=False)
    def square(i: int) -> int:
        return i * i
    return square


def test_no_lock_is_left_per_key(monkeypatch):
    monkeypatch.setattr(CachedFunc, "_store_computed_value", cache_locks._ORIGINAL)
    cache_locks.install()
    square = _small_cache()
    square.clear()
    assert [square(i) for i in range(200)] == [i * i for i in range(200)]
    assert square(199) == 199 ** 2  # still a hit
    assert len(_locks(square)) == 0


def test_without_the_hook_streamlit_keeps_a_lock_per_key(monkeypatch):
    """Fails on the day Streamlit drops the locks itself: then this module can go."""
    monkeypatch.setattr(CachedFunc, "_store_computed_value", cache_locks._ORIGINAL)
    square = _small_cache()
    square.clear()
    for i in range(200):
        square(i)
    assert len(_locks(square)) == 200


def test_a_value_asked_for_at_once_is_still_computed_once(monkeypatch):
    monkeypatch.setattr(CachedFunc, "_store_computed_value", cache_locks._ORIGINAL)
    cache_locks.install()
    calls = []

    @st.cache_data(show_spinner=False)
    def slow(i: int) -> int:
        calls.append(i)
        time.sleep(0.2)
        return i + 1

    slow.clear()
    out, start = [], threading.Barrier(6)

    def ask():
        start.wait()
        out.append(slow(7))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert out == [8] * 6 and calls == [7]
    assert len(_locks(slow)) == 0
    slow.clear()
    assert slow(7) == 8 and calls == [7, 7]  # evicted, then computed again with a fresh lock
