"""What was sent, as the send ledgers say: the link from a bounce back to an issue and a recipient.

A bounce names its send in one of two ways. The VERP token of the address it was sent to
(mailbox.verp) stands for one recipient of one issue; or the Message-ID of the failed message,
quoted in the DSN, is the one the SMTP provider gave it and the ledger keeps in that recipient's
*sent* record (SendGrid's records keep its X-Message-Id the same way). Outbox rehearsals are not
sends and are not read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.mailbox.verp import recipient_from_verp
from newsletter.providers.base import State
from newsletter.send.ledger import read_ledger

if TYPE_CHECKING:
    from collections.abc import Sequence

    from newsletter.config import Settings

HANDED_OVER = (State.SENT, State.IN_DOUBT)  # an in-doubt message may have gone out, and bounced


@dataclass
class Sends:
    """Every recipient each issue was handed over to, and each message's Message-ID."""

    recipients: dict[str, list[str]] = field(default_factory=dict)  # issue slug -> addresses (same-address keys)
    message_ids: dict[str, tuple[str, str]] = field(default_factory=dict)  # bare Message-ID -> (issue, address)

    def by_message_id(self, message_id: str) -> tuple[str, str] | None:
        """The (issue, address) whose message had this Message-ID (with or without <>), or None."""
        return self.message_ids.get(bare_message_id(message_id))

    def by_verp(self, address: str, return_path: str, secrets: Sequence[str]) -> tuple[str, str] | None:
        """The (issue, address) a VERP address (bounces+TOKEN@domain) was made for, or None."""
        return recipient_from_verp(address, return_path, secrets, self.recipients)


def bare_message_id(message_id: str) -> str:
    """A Message-ID as compared: no angle brackets or spaces (RFC 5322 ids are case-sensitive)."""
    return message_id.strip().strip("<>").strip()


def load_sends(settings: Settings) -> Sends:
    """Read every issue's ledger in [delivery] ledger_dir (SendError names a damaged one)."""
    return sends_from(sorted(settings.path(settings.delivery.ledger_dir).glob("*.jsonl")))


def sends_from(paths: Sequence[Path]) -> Sends:
    """The Sends of these ledger files, each named after its issue's slug."""
    sends = Sends()
    for path in paths:
        issue, state = path.stem, read_ledger(path)
        handed = [email for email, entry in state.entries.items() if entry.state in HANDED_OVER]
        if handed:
            sends.recipients[issue] = handed
        for email, entry in state.entries.items():
            if entry.state == State.SENT and entry.detail:
                sends.message_ids[bare_message_id(entry.detail)] = (issue, email)
    return sends
