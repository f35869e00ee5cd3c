"""lora_app.server.token_bucket: the one rate limit behind pace, the rerun limit, the flood cut and admit."""
from __future__ import annotations

import pytest

from lora_app.server.token_bucket import TokenBucket


def test_take_allows_a_burst_then_the_rate():
    bucket, now, waits = TokenBucket(rate=2, burst=5, now=0.0), 0.0, []
    for _ in range(5):
        waits.append(bucket.take(now, max_wait=10))
    assert waits == [0] * 5
    # the sixth start at the same instant waits 1/rate, and the refill during that wait is not counted twice
    assert bucket.take(now, max_wait=10) == pytest.approx(0.5)
    assert bucket.take(0.5, max_wait=10) == pytest.approx(0.5)
    # a long pause refills only up to the burst
    assert [bucket.take(100.0 + i * 1e-6, max_wait=10) for i in range(6)][-1] > 0


def test_reserve_queues_new_sessions_and_refuses_past_the_longest_wait():
    bucket = TokenBucket(rate=4, burst=2, now=0.0)
    waits = [bucket.reserve(0.0, max_wait=1.0) for _ in range(8)]
    assert waits[:2] == [0, 0]
    assert waits[2:6] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # each queues behind the ones before it
    assert waits[6:] == [None, None]                               # a longer wait: told to try again
    assert bucket.reserve(10.0, max_wait=1.0) == 0


def test_take_now_spends_only_what_is_there():
    bucket = TokenBucket(rate=2, burst=2, now=0.0)
    assert bucket.take_now(0.0) and bucket.take_now(0.0)
    assert not bucket.take_now(0.0)                      # empty: nothing is spent, so nothing is owed
    assert bucket.wait_for_next(0.0) == pytest.approx(0.5)
    assert bucket.wait_for_next(0.25) == pytest.approx(0.25)
    assert bucket.take_now(0.5)                          # the refill arrived
    assert bucket.wait_for_next(0.5) == pytest.approx(0.5)


def test_a_flood_overdraws_the_bucket_and_a_person_never_does():
    flood = TokenBucket(rate=60, burst=60, now=0.0)
    assert not any(flood.overdrawn(i / 30) for i in range(600))  # a held arrow key: ~30 a second, for 20 s
    flood = TokenBucket(rate=60, burst=60, now=0.0)
    hits = [flood.overdrawn(i / 1000) for i in range(200)]       # a message every millisecond
    assert not any(hits[:60]) and hits[-1]
