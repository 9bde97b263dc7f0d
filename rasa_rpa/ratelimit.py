"""Per-job token buckets: one runaway robot cannot flood a conversation.

Kept in memory per worker: a limit is a safety valve, not an accounting
system, so replicas each enforcing it is good enough.
"""

from __future__ import annotations

import time
from collections import OrderedDict

__all__ = ["RateLimiter"]


class RateLimiter:
    """``rate`` calls per second per key, with bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: int, *, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self._max_keys = max_keys
        #: A bucket idle this long is full again: the same as no bucket at all.
        self._refill = burst / rate
        #: Least recently used first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def acquire(self, key: str, now: float | None = None) -> float:
        """0 if the call may go ahead, else the seconds to wait before retrying."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        # Forget the jobs whose buckets are full again (finished jobs, mostly):
        # otherwise every job ever seen stays, some 250 bytes each, up to
        # max_keys (the soak benchmark, P7, saw it as RSS rising 0.7 MB/min).
        # The longest idle comes first, so this stops at the first one kept.
        # An unlimited rate refills at once: then no bucket is worth keeping,
        # this one included, and the loop must stop at an empty dict.
        while self._buckets:
            oldest, (_, used) = next(iter(self._buckets.items()))
            if now - used < self._refill:
                break
            del self._buckets[oldest]
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)  # forget the longest-idle job
        return wait
