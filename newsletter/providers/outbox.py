"""The outbox: every message as outbox/<slug>/<n>-<address>.eml, written atomically.

No account anywhere: the whole send can be inspected, or opened in a mail client, before a
real one. It is a rehearsal: nothing is delivered, so the send loop keeps its record apart
(outbox/<slug>/.ledger.jsonl) and never counts it as a send. Test sends (--test) go to
outbox/<slug>/test/ so they never mix with the rest.

Each file is written to a temp file beside it, then renamed; a send killed mid-write leaves that
temp file, so the next run into the folder removes those whose writer is gone (fsutil.sweep_temps).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.errors import ProviderError, RecipientError
from newsletter.files import atomic_write_bytes, sweep_temps
from newsletter.providers.base import Letter, Outcome, Outgoing, Report, State, on_disk
from newsletter.providers.mime import MessageFactory

if TYPE_CHECKING:
    from newsletter.config import Settings

BATCH_SIZE = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")


def eml_name(number: int, address: str) -> str:
    """'00012-ada@example.com.eml': sorted in send order, safe on every file system."""
    return f"{number:05d}-{_UNSAFE.sub('_', address)[:200]}.eml"


def outbox_folder(settings: Settings, slug: str, *, test: bool = False) -> Path:
    """Where an issue's messages go: <[delivery] outbox_dir>/<slug>/, or its test/ for --test."""
    folder = settings.path(settings.delivery.outbox_dir) / slug
    return folder / "test" if test else folder


class OutboxProvider:
    """Write each message as an .eml file in a folder per issue."""

    name = "outbox"
    batch_size = BATCH_SIZE
    handoff_size: int | None = 1  # one file a call, each recorded in doubt just before it is written
    concurrency = 1  # writing a file is quick: nothing to overlap

    def __init__(self, root: Path, *, test_send: bool = False) -> None:
        self.root = root
        self.test_send = test_send
        self._factory: MessageFactory | None = None
        self._swept: set[Path] = set()

    @classmethod
    def from_settings(cls, settings: Settings, *, test_send: bool = False) -> OutboxProvider:
        """The outbox folder is [delivery] outbox_dir, relative to the newsletter folder."""
        return cls(settings.path(settings.delivery.outbox_dir), test_send=test_send)

    def folder_for(self, slug: str) -> Path:
        """Where this issue's messages go: <outbox>/<slug>/, or <outbox>/<slug>/test/."""
        return self.root / slug / "test" if self.test_send else self.root / slug

    def deliver(self, letter: Letter, batch: Sequence[Outgoing], report: Report, *, slot: int = 0,
                durable: Callable[[], None] = on_disk) -> None:
        """Write one file per recipient; the Message-ID is the 'provider message id'.

        A message that cannot be built for one recipient fails that recipient, with the reason.
        Files are written once the ledger's in-doubt record is on disk (`durable`).
        """
        durable()
        folder = self.folder_for(letter.rendered.slug)
        if folder not in self._swept:
            sweep_temps(folder)
            self._swept.add(folder)
        if self._factory is None or self._factory.letter is not letter:
            self._factory = MessageFactory(letter)
        for out in batch:
            try:
                data, message_id = self._factory.build(out.recipient)
            except RecipientError as exc:
                report(Outcome((out.recipient.email,), State.FAILED, str(exc)))
                continue
            path = folder / eml_name(out.number, out.recipient.email)
            try:
                atomic_write_bytes(path, data)
            except OSError as exc:
                raise ProviderError(f"{path}: cannot write: {exc.strerror or exc}") from None
            report(Outcome((out.recipient.email,), State.SENT, message_id))

    def prepare(self, letter: Letter, batch: Sequence[Outgoing], remaining: int) -> None:
        """Nothing to prepare: writing a file is quick."""

    def create_batch(self) -> str:
        """The outbox cannot schedule (send.schedule refuses --schedule before this)."""
        raise ProviderError("the outbox provider cannot schedule a send", hint="use --provider sendgrid")

    def close(self) -> None:
        """Nothing to close."""
