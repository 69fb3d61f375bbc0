"""SendGrid: up to 1000 recipients a request, a 400 narrowed to the recipients it is about.

The request body is built by sendgrid.body (pure); the HTTP calls and their errors are in
sendgrid.api. Retries follow the RetryPolicy; an answer lost after the request went out is
reported in doubt, never retried. With [sendgrid] concurrency N, the send loop keeps N requests
in flight (send.deliver), each slot on its own kept-alive connection; a 429 pauses them all
(RetryPolicy.pause).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from newsletter.errors import ProviderError
from newsletter.providers.base import Letter, Outcome, Outgoing, Report, State, on_disk
from newsletter.providers.retry import Exhausted, InDoubt, RetryPolicy
from newsletter.providers.sendgrid.api import BadRequest, SendGridAPI, TooLarge, describe
from newsletter.providers.sendgrid.body import MAX_REQUEST_BYTES, mail_body, personalization, shared_content
from newsletter.providers.sendgrid.prebuild import BodiesAhead, prepare_body

if TYPE_CHECKING:
    from newsletter.config import Settings

class SendGridProvider:
    """Up to 1000 recipients per request, one personalization each; 400s narrowed to the culprits."""

    name = "sendgrid"
    handoff_size: int | None = None  # one request a batch: the whole batch is recorded in doubt before it goes

    def __init__(self, api: SendGridAPI, policy: RetryPolicy, batch_size: int = 1000, concurrency: int = 1) -> None:
        self.api = api
        self.policy = policy
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.ahead = BodiesAhead()

    @classmethod
    def from_settings(cls, settings: Settings, api_key: str, policy: RetryPolicy) -> SendGridProvider:
        """Build from [sendgrid] host, timeout, batch_size and concurrency; the key comes from the caller."""
        return cls(SendGridAPI.from_settings(settings, api_key), policy, settings.sendgrid.batch_size,
                   settings.sendgrid.concurrency)

    def prepare(self, letter: Letter, batch: Sequence[Outgoing], remaining: int) -> None:
        """Have a coming batch's body built in a worker process while these are sent.

        The send loop records each batch pending before its request starts, whenever it was built.
        """
        self.ahead.submit(letter, batch, remaining)

    def deliver(self, letter: Letter, batch: Sequence[Outgoing], report: Report, *, slot: int = 0,
                durable: Callable[[], None] = on_disk) -> None:
        """Send one batch on this slot's connection; report every recipient as sent, failed or in doubt.

        The body is taken (or built) while the ledger's in-doubt record is synced; the request
        goes once it is on disk (`durable`).
        """
        prepared = self.ahead.take(batch) or prepare_body(letter, batch)
        durable()
        for index, reason in prepared.refused:
            report(Outcome((batch[index].recipient.email,), State.FAILED, reason))
        self._post(letter, [batch[i] for i in prepared.accepted], report, slot, prepared.body)

    def create_batch(self) -> str:
        """A new batch id for a scheduled send (retried like any other request)."""
        return self.policy.call(self.api.create_batch)

    def close(self) -> None:
        """Stop the worker process, if one was started, and close the kept-alive connections."""
        self.ahead.close()
        self.api.close()

    def _post(self, letter: Letter, outs: list[Outgoing], report: Report, slot: int, body: str | None = None) -> None:
        if not outs:
            return
        emails = tuple(out.recipient.email for out in outs)
        if body is None:
            shared = shared_content(letter)
            personalizations = [personalization(letter, out.recipient, shared) for out in outs]
            body = json.dumps(mail_body(letter, [], personalizations, shared))
        if len(outs) > 1 and len(body) > MAX_REQUEST_BYTES:  # ASCII JSON: its length is its size in bytes
            self._split(letter, outs, report, slot)
            return
        try:
            message_id = self.policy.call(lambda: self.api.send_mail(body, slot=slot))
        except Exhausted as exc:
            report(Outcome(emails, State.FAILED, str(exc)))
        except InDoubt as exc:
            report(Outcome(emails, State.IN_DOUBT, str(exc)))
        except TooLarge as exc:
            if len(outs) == 1:
                report(Outcome(emails, State.FAILED, f"SendGrid: request too large ({exc})"))
            else:
                self._split(letter, outs, report, slot)
        except BadRequest as exc:
            self._bad_request(letter, outs, exc, report, slot)
        else:
            report(Outcome(emails, State.SENT, message_id))

    def _split(self, letter: Letter, outs: list[Outgoing], report: Report, slot: int) -> None:
        half = len(outs) // 2
        self._post(letter, outs[:half], report, slot)
        self._post(letter, outs[half:], report, slot)

    def _bad_request(self, letter: Letter, outs: list[Outgoing], exc: BadRequest, report: Report, slot: int) -> None:
        """Fail only the recipients SendGrid names; bisect when it names none."""
        culprits: dict[int, str] = {}
        for error in exc.errors:
            field = str(error.get("field") or "")
            index = _personalization_index(field)
            if index is not None and index < len(outs):  # the field names a place in this request only
                culprits.setdefault(index, str(error.get("message") or "refused"))
            elif field and field != "null" and not field.startswith("personalizations"):
                # The same for every request (from, subject, categories...): no recipient can fix it.
                raise ProviderError(f"SendGrid refused the request: {describe(error)}",
                                    hint="check [sender] and [sendgrid] in newsletter.toml")
        if culprits:
            for index, reason in culprits.items():
                report(Outcome((outs[index].recipient.email,), State.FAILED, f"SendGrid: {reason}"))
            self._post(letter, [out for i, out in enumerate(outs) if i not in culprits], report, slot)
        elif len(outs) == 1:
            report(Outcome((outs[0].recipient.email,), State.FAILED, f"SendGrid: {exc}"))
        else:
            self._split(letter, outs, report, slot)


def _personalization_index(field: str) -> int | None:
    """3 for 'personalizations.3.to.0.email' (SendGrid's way of naming a recipient's error)."""
    parts = field.split(".")
    if len(parts) >= 2 and parts[0] == "personalizations" and parts[1].isdigit():
        return int(parts[1])
    return None
