"""One token bucket for every rate limit of the server: a burst at once, then a sustained rate.

Three limits use it (:mod:`lora_app.server.load_shedding`): a session's run starts (``pace``), a
session's rerun messages on the event loop (``install_rerun_limit``, with a second bucket that cuts
a flooding session off), and new sessions' first runs, server-wide (``admit``).
"""
from __future__ import annotations


class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate`` a second; each start spends one."""

    def __init__(self, rate: float, burst: float, now: float, tokens: float | None = None):
        self.rate, self.burst = rate, burst
        self.tokens = float(burst) if tokens is None else float(tokens)
        self.last = now

    def _refilled(self, now: float) -> float:
        return min(self.burst, self.tokens + (now - self.last) * self.rate)

    def take(self, now: float, max_wait: float) -> float:
        """Spend one start: the seconds to wait first (0: none, at most ``max_wait``).

        The refill during the wait is counted once: the bucket's clock moves to the end of the wait.
        """
        tokens = self._refilled(now)
        wait = 0.0 if tokens >= 1 else min(max_wait, (1 - tokens) / self.rate)
        self.last = now + wait
        self.tokens = tokens + wait * self.rate - 1
        return wait

    def take_now(self, now: float) -> bool:
        """Spend one start if one is there without waiting; otherwise change nothing and say so."""
        tokens = self._refilled(now)
        if tokens < 1:
            return False
        self.tokens, self.last = tokens - 1, now
        return True

    def wait_for_next(self, now: float) -> float:
        """The seconds until one start is there (0 when it is already), spending nothing."""
        return max(0.0, (1 - self._refilled(now)) / self.rate)

    def reserve(self, now: float, max_wait: float) -> float | None:
        """Reserve one start: the seconds to wait, or None past ``max_wait`` (nothing is then spent).

        Tokens may go below zero: each reservation queues behind those already made.
        """
        self.tokens, self.last = self._refilled(now), now
        wait = 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate
        if wait > max_wait:
            return None
        self.tokens -= 1
        return wait

    def overdrawn(self, now: float) -> bool:
        """Spend one token whatever is there; whether the bucket is now below zero (a flood)."""
        self.tokens, self.last = self._refilled(now) - 1, now
        return self.tokens < 0
