"""A cached value, once written, leaves no lock behind.

Streamlit's ``st.cache_data`` and ``st.cache_resource`` take a lock per value key while they compute
a missing value, so that two sessions asking for the same value at once compute it once. Streamlit
1.67 keeps that lock in the cache's ``_value_locks`` for ever, even after the entry itself is evicted
(``max_entries``, ``maxCacheDataSize``). Every student's link has a seed of its own, so every new
seed, size or rank is a new key: measured with ``bench/server_probe.py`` (``LORA_PROBE_OBJECTS=1``), a
class of 50 added about 600 locks a minute, the only object type that grew (docs/PERFORMANCE.md,
"A class on one server"). Streamlit's own comment on ``Cache.write_result`` says the lock could go once
the result is written.

:func:`install` wraps ``CachedFunc._store_computed_value`` once per process: after the value is
written, still holding the key's lock, it removes that lock from the cache's table. A session already
waiting on the same lock still gets it and finds the value; a later miss of the same key (after an
eviction) gets a fresh lock. Caches in ``refresh_mode="background"``, whose lock doubles as the
"refresh in flight" flag, are left alone (the app has none).

Pinned to streamlit 1.67.0 (requirements.txt); ``tests/test_cache_locks.py`` fails if Streamlit stops
writing values through this method, and says so when Streamlit starts releasing the locks itself.
"""
from __future__ import annotations

from streamlit.runtime.caching.cache_utils import CachedFunc

_ORIGINAL = CachedFunc._store_computed_value


def _store_computed_value(self, cache, value_key, computed_value, *, invalidation_token=None):
    try:
        return _ORIGINAL(self, cache, value_key, computed_value, invalidation_token=invalidation_token)
    finally:
        if self._info.refresh_mode != "background":
            with cache._value_locks_lock:
                cache._value_locks.pop(value_key, None)


def install() -> None:
    """Wrap ``CachedFunc._store_computed_value`` once per process."""
    if CachedFunc._store_computed_value is not _store_computed_value:
        CachedFunc._store_computed_value = _store_computed_value
