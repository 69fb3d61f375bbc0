"""SendGrid's signed Event Webhook: verify, deduplicate, record; answer 200 only once it is on disk.

SendGrid posts a JSON array of events to POST <base>/webhooks/sendgrid, signed with ECDSA P-256
over SHA-256 of the timestamp header followed by the raw body bytes (never re-serialised JSON).
The public key is the base64 DER SubjectPublicKeyInfo SendGrid shows for the signed webhook
(SENDGRID_WEBHOOK_PUBLIC_KEY). A request with no key configured gets 503 (SendGrid retries for 24
hours, so nothing is lost while the writer sets it); a missing or bad signature, or a timestamp
older than MAX_AGE (or more than MAX_SKEW ahead), gets 403 and nothing is recorded.

What reaches the inbox (so `subscribers apply` marks the reader within minutes):
    bounce, type "bounce" (hard; "blocked" is soft)          -> bounced
    dropped, reason "Bounced Address", "Invalid", "Invalid Address" -> bounced
    dropped, reason "Spam Reporting Address"                 -> complained
    dropped, reason "Unsubscribed Address"                   -> unsubscribed
    spamreport                                               -> complained
    unsubscribe, group_unsubscribe                           -> unsubscribed
Other drops (Invalid SMTPAPI header, Spam Content, Recipient List over Package Quota) say nothing
about the reader and stay in the per-issue store only, with every other delivery event
(newsletter.subscribers.provider_events). The event's issue is the `newsletter_issue` custom arg
that every request of a send carries.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader

from newsletter.errors import ConfigError
from newsletter.issues import SLUG_MAX_LENGTH, SLUG_PATTERN
from newsletter.providers.sendgrid.body import ISSUE_ARG
from newsletter.subscribers.inbox import Event, EventType, Inbox, new_event
from newsletter.subscribers.provider_events import KEPT, DeliveryEvents, delivery_record, one_line_text

PUBLIC_KEY_ENV = "SENDGRID_WEBHOOK_PUBLIC_KEY"
MAX_BODY_BYTES = 8 * 1024 * 1024  # SendGrid posts batches of well under 1 MB; mount the route with this limit
MAX_AGE = 600  # seconds: an older signature is refused (a replay)
MAX_SKEW = 300  # seconds a timestamp may be ahead of our clock
MAX_EVENT_ID = 100
MAX_EMAIL = 320
SOURCE = "sendgrid"
DROPPED_AS = {
    "bounced address": EventType.BOUNCED,
    "invalid": EventType.BOUNCED,
    "invalid address": EventType.BOUNCED,
    "spam reporting address": EventType.COMPLAINED,
    "unsubscribed address": EventType.UNSUBSCRIBED,
}
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
log = logging.getLogger(__name__)


def check_public_key(value: str) -> None:
    """Raise ConfigError unless value is an EC public key SendGrid's verifier can use (for `serve`'s start)."""
    try:
        _verifier(_key_text(value))
    except ValueError as exc:
        hint = "copy the verification key from SendGrid's Mail Settings > Signed Event Webhook"
        raise ConfigError([f"{PUBLIC_KEY_ENV}: {exc}"], hint=hint) from None


def handle(raw: bytes, headers: Mapping[str, str], *, public_key: str, inbox: Inbox, store: DeliveryEvents,
           now: float) -> tuple[int, str]:
    """Answer one webhook post: (HTTP status, a short plain-text body)."""
    if not public_key:
        return 503, "the signed event webhook is not configured: set " + PUBLIC_KEY_ENV
    if len(raw) > MAX_BODY_BYTES:
        return 413, "request body too large"
    refused = signature_problem(raw, headers, public_key, now)
    if refused:
        log.warning("SendGrid webhook refused: %s", refused)
        return 403, refused
    try:
        events = json.loads(raw)
    except (ValueError, RecursionError):
        return 400, "the body is not JSON"
    if not isinstance(events, list):
        return 400, "the body is not a JSON array of events"
    try:
        record_events(events, inbox=inbox, store=store, now=now)
    except OSError as exc:  # a full disk: SendGrid retries anything but a 2xx
        log.error("SendGrid webhook: cannot record events: %s", exc)
        return 503, "cannot record the events now"
    return 200, "ok"


def signature_problem(raw: bytes, headers: Mapping[str, str], public_key: str, now: float) -> str | None:
    """Why this post is not SendGrid's, signed within MAX_AGE; None if it is."""
    signature = _header(headers, EventWebhookHeader.SIGNATURE)
    timestamp = _header(headers, EventWebhookHeader.TIMESTAMP)
    if not signature or not timestamp:
        return "missing signature headers"
    if not _TIMESTAMP.match(timestamp):
        return "bad timestamp"
    if int(timestamp) < now - MAX_AGE:
        return "timestamp too old"
    if int(timestamp) > now + MAX_SKEW:
        return "timestamp in the future"
    try:
        body = raw.decode("utf-8")
        base64.b64decode(signature, validate=True)
        verifier = _verifier(_key_text(public_key))
        if verifier.verify_signature(body, signature, timestamp):
            return None
    except (UnicodeDecodeError, binascii.Error, ValueError, InvalidSignature):
        pass
    return "bad signature"


def record_events(events: list[Any], *, inbox: Inbox, store: DeliveryEvents, now: float) -> None:
    """Write the new events: readers' to the inbox (one fsync), all kept ones to the store."""
    with store.lock:
        forwarded = store.forwarded(e.sg_event_id for e, _ in inbox.scan() if e.sg_event_id)
        to_inbox: list[Event] = []
        by_issue: dict[str, list[dict[str, Any]]] = {}
        batch: set[str] = set()
        skipped = 0
        for event in events:
            checked = _checked(event)
            if checked is None:
                skipped += 1
                continue
            sg_id, email, issue = checked
            reader_event = inbox_event(event, email, issue)
            if reader_event is not None and sg_id not in forwarded:
                forwarded.add(sg_id)  # also stops a second copy within this batch
                to_inbox.append(reader_event)
            if event["event"] in KEPT and sg_id not in batch and store.is_new(sg_id, now):
                batch.add(sg_id)
                by_issue.setdefault(issue, []).append(delivery_record(event, email, now))
        try:
            inbox.append(to_inbox)
        except BaseException:
            forwarded.difference_update(e.sg_event_id for e in to_inbox)
            raise
        store.append(by_issue, now)
    if skipped:
        log.warning("SendGrid webhook: skipped %d malformed events", skipped)


def inbox_event(event: Mapping[str, Any], email: str, issue: str) -> Event | None:
    """The inbox event one SendGrid event means for the reader, or None (see the module docstring)."""
    kind = event["event"]
    reason = one_line_text(event.get("reason"), 300)
    if kind == "bounce" and event.get("type") == "bounce":
        status = one_line_text(event.get("status"), 20)
        cls = one_line_text(event.get("bounce_classification"), 60)
        detail = " ".join(p for p in ("SendGrid bounce:", status, reason, f"({cls})" if cls else "") if p)
        type_ = EventType.BOUNCED
    elif kind == "dropped" and reason.lower() in DROPPED_AS:
        detail, type_ = f"SendGrid dropped: {reason}", DROPPED_AS[reason.lower()]
    elif kind == "spamreport":
        detail, type_ = "SendGrid spam report", EventType.COMPLAINED
    elif kind in ("unsubscribe", "group_unsubscribe"):
        group = event.get("asm_group_id")
        detail = f"SendGrid {kind}" + (f" (group {group})" if isinstance(group, int) else "")
        type_ = EventType.UNSUBSCRIBED
    else:
        return None
    return new_event(type_, SOURCE, email=email, detail=detail, issue=issue, sg_event_id=event["sg_event_id"])


def _checked(event: object) -> tuple[str, str, str] | None:
    """(sg_event_id, email, issue slug or "") of a well-formed event, else None."""
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        return None
    sg_id, email = event.get("sg_event_id"), event.get("email")
    if not isinstance(sg_id, str) or not 0 < len(sg_id) <= MAX_EVENT_ID or not sg_id.isprintable():
        return None
    if not isinstance(email, str) or not 2 < len(email) <= MAX_EMAIL or "@" not in email:
        return None
    if not email.isprintable() or any(c.isspace() for c in email):
        return None
    issue = event.get(ISSUE_ARG)
    ok = isinstance(issue, str) and len(issue) <= SLUG_MAX_LENGTH and SLUG_PATTERN.match(issue)
    return sg_id, email, issue if ok and isinstance(issue, str) else ""


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    return (value or "").strip()


def _key_text(value: str) -> str:
    """The base64 of the key: PEM armour and whitespace (as pasted from a page) taken out."""
    lines = [line for line in value.strip().splitlines() if not line.startswith("-----")]
    return "".join("".join(lines).split())


@functools.lru_cache(maxsize=4)
def _verifier(key: str) -> EventWebhook:
    """SendGrid's verifier for a key (parsed once); ValueError if it is not an EC public key."""
    if not key:
        raise ValueError("empty key")
    try:
        base64.b64decode(key, validate=True)
        verifier = EventWebhook(key)
    except (binascii.Error, ValueError, UnsupportedAlgorithm):
        raise ValueError("not a base64 DER public key") from None
    if not isinstance(verifier.public_key, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic-curve (ECDSA) public key")
    return verifier
