"""Retries: what a provider's request may fail with, and how long to wait before trying again.

Transient (and its RateLimited) may be retried; InDoubt must not be (the request went out and
may have been accepted); Exhausted is what RetryPolicy.call raises when the retries run out.

One policy serves every slot of a send's window (send.deliver), so a rate limit is shared: a 429
(or an SMTP relay's "slow down") pauses everyone until the reset time, not only the slot that got it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


class Transient(Exception):
    """The request did not take effect (a 5xx answer, no connection): safe to try again."""


class RateLimited(Transient):
    """A 429: try again after `wait` seconds."""

    def __init__(self, message: str, wait: float | None) -> None:
        super().__init__(message)
        self.wait = wait


class InDoubt(Exception):
    """The request went out but no answer came back: it may have been accepted."""


class Exhausted(Exception):
    """A transient failure outlasted the retries."""


@dataclass
class RetryPolicy:
    """Exponential backoff with jitter for transient failures; patience for rate limits."""

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_rate_wait: float = 600.0  # one 429 never makes us wait longer than this
    max_rate_limits: int = 50  # 429s in a row for one request before giving up
    sleep: Callable[[float], None] = time.sleep
    on_wait: Callable[[float, str], None] = lambda seconds, why: None
    clock: Callable[[], float] = time.monotonic
    _resume_at: float = field(default=0.0, init=False, repr=False)  # the shared pause: nobody starts before
    _pause_why: str = field(default="", init=False, repr=False)
    _gate: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based): half fixed, half jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def pause(self, seconds: float, why: str) -> None:
        """Hold every caller of this policy (every slot of the window) for `seconds` from now.

        Thread-safe; a later reset time wins over an earlier one, never the reverse.
        """
        with self._gate:
            until = self.clock() + min(max(seconds, 0.0), self.max_rate_wait)
            if until > self._resume_at:
                self._resume_at, self._pause_why = until, why

    def wait_if_paused(self, passed: float = 0.0) -> float:
        """Wait out the shared pause unless this caller already waited until it; return its end.

        Call before each request with what the previous call returned: a pause is waited once,
        even with a `sleep` that does not advance the clock (tests).
        """
        with self._gate:
            until, why = self._resume_at, self._pause_why
        if until > passed:
            remaining = until - self.clock()
            if remaining > 0:
                self._wait(remaining, why)
        return max(until, passed)

    def call(self, fn: Callable[[], T]) -> T:
        """Run fn, retrying Transient failures; raise Exhausted when the retries run out.

        A rate limit pauses every caller of the policy (see pause), this one included.
        """
        failures = limits = 0
        passed = 0.0
        while True:
            passed = self.wait_if_paused(passed)
            try:
                return fn()
            except RateLimited as exc:
                limits += 1
                if limits > self.max_rate_limits:
                    raise Exhausted(f"{exc} ({limits} times in a row)") from None
                wait = exc.wait if exc.wait is not None else self.backoff(min(limits, 6))
                self.pause(wait, str(exc))
            except Transient as exc:
                failures += 1
                if failures >= self.attempts:
                    raise Exhausted(f"{exc} (after {failures} attempts)") from None
                self._wait(self.backoff(failures), str(exc))

    def _wait(self, seconds: float, why: str) -> None:
        self.on_wait(seconds, why)
        self.sleep(seconds)
