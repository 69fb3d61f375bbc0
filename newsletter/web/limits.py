"""Rate limits of the subscribe form: per address a day, per client address an hour.

In memory, per process, thread-safe: a restart forgets them, and two processes behind one proxy
count apart. That is enough to stop a bot or a mail-bombing through the form (the limits are
small); a writer who runs several processes divides the limits between them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

MAX_KEYS = 100_000  # beyond this many tracked keys the oldest are forgotten (memory stays bounded)


class RateLimit:
    """At most `limit` events per key in a sliding window of `window` seconds."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Count one event for `key`; False (and not counted) when the key is over its limit."""
        now = self.clock()
        with self._lock:
            times = self._seen.pop(key, None) or deque()
            while times and times[0] <= now - self.window:
                times.popleft()
            allowed = len(times) < self.limit
            if allowed:
                times.append(now)
            if times:
                self._seen[key] = times  # re-inserted: the dict stays ordered by last use
            if len(self._seen) > MAX_KEYS:
                del self._seen[next(iter(self._seen))]
            return allowed
