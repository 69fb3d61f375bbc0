"""The outbox: every message as outbox/<slug>/<n>-<address>.eml, written atomically.

No account anywhere: the whole send can be inspected, or opened in a mail client, before a
real one. Test sends (--test) go to outbox/<slug>/test/ so they never mix with the real send.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.errors import ProviderError
from newsletter.fsutil import atomic_write_bytes
from newsletter.providers import SENT, Letter, Outcome, Outgoing, Report
from newsletter.providers.mime import MessageFactory

if TYPE_CHECKING:
    from newsletter.config import Settings

BATCH_SIZE = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")


def eml_name(number: int, address: str) -> str:
    """'00012-ada@example.com.eml': sorted in send order, safe on every file system."""
    return f"{number:05d}-{_UNSAFE.sub('_', address)[:200]}.eml"


class OutboxProvider:
    """Write each message as an .eml file in a folder per issue."""

    name = "outbox"
    batch_size = BATCH_SIZE

    def __init__(self, root: Path, *, test_send: bool = False) -> None:
        self.root = root
        self.test_send = test_send
        self._factory: MessageFactory | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, test_send: bool = False) -> OutboxProvider:
        """The outbox folder is [delivery] outbox_dir, relative to the newsletter folder."""
        return cls(settings.path(settings.delivery.outbox_dir), test_send=test_send)

    def folder_for(self, slug: str) -> Path:
        """Where this issue's messages go: <outbox>/<slug>/, or <outbox>/<slug>/test/."""
        return self.root / slug / "test" if self.test_send else self.root / slug

    def deliver(self, letter: Letter, batch: Sequence[Outgoing], report: Report) -> None:
        """Write one file per recipient; the Message-ID is the 'provider message id'."""
        folder = self.folder_for(letter.rendered.slug)
        if self._factory is None or self._factory.letter is not letter:
            self._factory = MessageFactory(letter)
        for out in batch:
            data, message_id = self._factory.build(out.recipient)
            path = folder / eml_name(out.number, out.recipient.email)
            try:
                atomic_write_bytes(path, data)
            except OSError as exc:
                raise ProviderError(f"{path}: cannot write: {exc.strerror or exc}") from None
            report(Outcome((out.recipient.email,), SENT, message_id))

    def close(self) -> None:
        """Nothing to close."""
