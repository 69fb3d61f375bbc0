"""Building SendGrid request bodies ahead, in worker processes.

Building a body is CPU work (a signed link, substitutions and headers for each of 1000 people,
then the JSON), and the send loop's threads share one core (the GIL), so the coming bodies are
built in worker processes while the window's requests are on the wire: two on a machine with
two cores or more, one otherwise. A body no worker has started when its request is due is built
by the sending thread instead, so nothing waits on a worker that is behind (while they start, or
when the network costs nothing). The workers are `spawn`ed, so they inherit no file descriptors
(not the ledger's lock), ignore Ctrl-C (the send loop handles it) and exit on their own when the
sending process dies, even by SIGKILL; they import no renderer (about 25 MB each). Small sends
(few batches) start none.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from newsletter.errors import RecipientError
from newsletter.models import Recipient
from newsletter.providers.base import Letter, Outgoing
from newsletter.providers.sendgrid.body import (
    MAX_REQUEST_BYTES,
    mail_body,
    personalization,
    personalization_problem,
    shared_content,
)

WORTH_A_WORKER = 8  # batches left before a worker process pays for its start-up
WORKERS = min(2, os.cpu_count() or 1)  # each about 25 MB; two keep ahead of the sending process


@dataclass
class PreparedBody:
    """A batch made ready: who SendGrid would refuse (and why), who goes, the body as JSON."""

    refused: list[tuple[int, str]]  # (index in the batch, reason)
    accepted: list[int]  # indexes in the batch
    body: str | None  # None when the batch must be split to stay under SendGrid's size limit


def prepare_body(letter: Letter, batch: Sequence[Outgoing]) -> PreparedBody:
    """Each recipient's personalization, checked, and the request body serialized once."""
    shared = shared_content(letter)
    refused: list[tuple[int, str]] = []
    accepted: list[int] = []
    personalizations = []
    for index, out in enumerate(batch):
        try:
            p = personalization(letter, out.recipient, shared)
        except RecipientError as exc:
            refused.append((index, str(exc)))
            continue
        problem = personalization_problem(p)
        if problem:
            refused.append((index, problem))
        else:
            accepted.append(index)
            personalizations.append(p)
    if not accepted:
        return PreparedBody(refused, accepted, None)
    body = json.dumps(mail_body(letter, [], personalizations, shared))
    fits = len(accepted) <= 1 or len(body) <= MAX_REQUEST_BYTES  # ASCII JSON: length is size in bytes
    return PreparedBody(refused, accepted, body if fits else None)


Row = tuple[int, str, str, str]  # a recipient as plain values: cheaper to send to the worker


def _prepare_rows(letter: Letter, rows: list[Row]) -> PreparedBody:
    """prepare_body() in the worker, from plain values."""
    return prepare_body(letter, [Outgoing(n, Recipient(email, name, url)) for n, email, name, url in rows])


def _worker_start(parent: int) -> None:
    """In the worker: leave Ctrl-C to the sender, and exit when the sender is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _key(batch: Sequence[Outgoing]) -> tuple[str, ...]:
    return tuple(o.recipient.email for o in batch)


class BodiesAhead:
    """Bodies being built ahead, for the batches named in submit(), until take() collects them."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict[tuple[str, ...], Future[PreparedBody]] = {}  # by the batch's addresses
        self.used = 0  # bodies taken from the worker (for tests and the curious)
        self.taken_back = 0  # bodies the worker had not started when needed, so built by the caller

    def submit(self, letter: Letter, batch: Sequence[Outgoing], remaining: int) -> None:
        """Start building `batch`'s body, if enough batches remain to make a worker worth it."""
        if self._pool is None:
            if remaining < WORTH_A_WORKER:
                return
            import multiprocessing

            self._pool = ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_start, initargs=(os.getpid(),))
        rows = [(o.number, o.recipient.email, o.recipient.name, o.recipient.unsubscribe_url) for o in batch]
        try:
            self._pending[_key(batch)] = self._pool.submit(_prepare_rows, letter, rows)
        except BrokenProcessPool:  # the worker died: the send loop builds the bodies itself from here on
            self._pending.clear()

    def take(self, batch: Sequence[Outgoing]) -> PreparedBody | None:
        """The body built ahead for these recipients, or None (then the caller builds it).

        A batch is known by its addresses (each is in a send once), not by the list that carried
        them: the send loop hands over a copy of the batch it named here. A body the worker has
        not started yet is built by the caller instead: the two share the work when the worker
        falls behind (at 0 ms a request), and nothing waits for it.
        """
        pending = self._pending.pop(_key(batch), None)
        if pending is None:
            return None
        if pending.cancel():  # the worker had not started it, so is behind
            self.taken_back += 1
            return None
        try:
            prepared = pending.result()
        except Exception:  # a worker that failed or died: build it here instead
            return None
        self.used += 1
        return prepared

    def close(self) -> None:
        """Stop the worker without waiting for a body nobody will take."""
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
