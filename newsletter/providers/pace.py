"""A pace shared by every connection of a send: at most so many messages a minute, slower after a rate limit.

A relay's quota per minute ([smtp] max_per_minute) is met by spacing the messages evenly: each one
gets the next free moment, `60 / max_per_minute` seconds after the one before, whichever
connection sends it, so no 60 seconds ever hold more than the quota (plus one). When the relay
says "too many" anyway, slow_down() doubles the spacing (starting from the pace actually reached
when none was set); a minute without another complaint lets it back down by a fifth at a time,
never below the configured pace. Thread-safe: the connections of a send share one Pace.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

MAX_GAP = 60.0  # after repeated rate limits, never slower than a message a minute
RECOVER_AFTER = 60.0  # seconds without a complaint before speeding up again
_RECENT = 64  # messages remembered to measure the pace reached


class Pace:
    """Even spacing of messages across threads: a meter, not a burst bucket."""

    def __init__(self, per_minute: float = 0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.floor = 60.0 / per_minute if per_minute > 0 else 0.0  # the configured gap (0: none)
        self.gap = self.floor
        self._clock, self._sleep = clock, sleep
        self._next = 0.0
        self._slowed = float("-inf")  # when slow_down last took effect
        self._recent: deque[float] = deque(maxlen=_RECENT)
        self._lock = threading.Lock()

    def take(self) -> None:
        """Wait for this message's moment (at once when nothing limits the pace)."""
        with self._lock:
            now = self._clock()
            self._recent.append(now)
            if self.gap > self.floor and now - self._slowed >= RECOVER_AFTER:
                self.gap = max(self.floor, self.gap * 0.8)
                self._slowed = now
            if self.gap <= 0:
                return
            at = max(now, self._next)
            self._next = at + self.gap
        if at > now:
            self._sleep(at - now)

    def slow_down(self) -> None:
        """Halve the pace (a relay said too many); one complaint per gap counts once."""
        with self._lock:
            now = self._clock()
            if now - self._slowed < max(1.0, self.gap):  # the other connections hearing the same complaint
                return
            reached = (self._recent[-1] - self._recent[0]) / (len(self._recent) - 1) if len(self._recent) > 1 else 0
            self.gap = min(MAX_GAP, max(self.gap, reached, 0.001) * 2)
            self._slowed = now

    @property
    def per_minute(self) -> float:
        """The pace now, in messages a minute (0: unlimited)."""
        return 60.0 / self.gap if self.gap > 0 else 0.0
