"""Retries: what a provider's request may fail with, and how long to wait before trying again.

Transient (and its RateLimited) may be retried; InDoubt must not be (the request went out and
may have been accepted); Exhausted is what RetryPolicy.call raises when the retries run out.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
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

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based): half fixed, half jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def call(self, fn: Callable[[], T]) -> T:
        """Run fn, retrying Transient failures; raise Exhausted when the retries run out."""
        failures = limits = 0
        while True:
            try:
                return fn()
            except RateLimited as exc:
                limits += 1
                if limits > self.max_rate_limits:
                    raise Exhausted(f"{exc} ({limits} times in a row)") from None
                wait = exc.wait if exc.wait is not None else self.backoff(min(limits, 6))
                self._wait(min(max(wait, 0.0), self.max_rate_wait), str(exc))
            except Transient as exc:
                failures += 1
                if failures >= self.attempts:
                    raise Exhausted(f"{exc} (after {failures} attempts)") from None
                self._wait(self.backoff(failures), str(exc))

    def _wait(self, seconds: float, why: str) -> None:
        self.on_wait(seconds, why)
        self.sleep(seconds)
