"""One message of the return mailbox -> what it is. Pure: no list, no ledger, no IMAP.

    multipart/report; report-type=delivery-status       (RFC 3464, Postfix, Exim, Gmail, M365, SES)
    |- text/plain                                       what a person reads
    |- message/delivery-status                          per-message fields, then per recipient:
    |                                                   Final-Recipient, Action, Status, Diagnostic-Code
    `- message/rfc822 | text/rfc822-headers             the message that failed (its Message-ID)

    multipart/report; report-type=feedback-report       (RFC 5965 ARF: Yahoo, AOL, ... feedback loops)
    |- text/plain
    |- message/feedback-report                          Feedback-Type: abuse, Original-Rcpt-To?
    `- message/rfc822 | text/rfc822-headers             the newsletter as received (Return-Path: VERP)

Status 5.x.x is a permanent failure, 4.x.x (or Action: delayed) a temporary one; a DSN that
says delivered, relayed or expanded is not a failure. A bounce in no standard shape is read by
flufl.bounce (Mailman's detectors), but only when it comes from a mail system: an auto-reply
("out of office") is never a bounce. A message to [delivery] unsubscribe_mailto saying
"unsubscribe" in its subject or first lines is an unsubscribe from its From address.
Everything else is Kind.OTHER, and the mailbox leaves it alone.
"""

from __future__ import annotations

import email
import email.errors
import email.header
import email.parser
import email.utils
import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from enum import StrEnum

MAX_SCAN = 256 * 1024  # bytes of a body searched for codes and Message-IDs: a bounce is small


class Kind(StrEnum):
    """What a message of the return mailbox is."""

    BOUNCE = "bounce"  # one or more failures (each permanent or temporary)
    COMPLAINT = "complaint"  # an ARF abuse report
    UNSUBSCRIBE = "unsubscribe"  # a mail to the unsubscribe address
    OTHER = "other"  # an auto-reply, a person's letter, spam, something unreadable: left alone


@dataclass(frozen=True)
class Failure:
    """One recipient a report is about ("" when the report does not say who)."""

    address: str
    permanent: bool = True
    status: str = ""  # the enhanced status code, e.g. 5.1.1
    diagnostic: str = ""  # the remote server's words, one line


@dataclass(frozen=True)
class Finding:
    """What one message says, before anyone is looked up."""

    kind: Kind
    fingerprint: str  # the message's identity: a re-read gives the same one
    date: datetime | None
    subject: str
    failures: tuple[Failure, ...] = ()
    original_id: str = ""  # the Message-ID of the newsletter it is about, if it says
    delivered_to: tuple[str, ...] = ()  # where it was sent (a VERP address, or the unsubscribe address)
    why: str = ""  # for OTHER: why it was left alone

    @property
    def summary(self) -> str:
        """The date and subject, as a report shows a message."""
        when = self.date.strftime("%Y-%m-%d %H:%M") if self.date else "(no date)"
        return f"{when} {self.subject!r}"


def classify(raw: bytes, unsubscribe_address: str = "") -> Finding:
    """Say what one raw message (RFC 5322 bytes) is; never raises on a malformed message."""
    msg = email.message_from_bytes(raw)
    base = Finding(Kind.OTHER, fingerprint(msg, raw), message_date(msg), header_text(msg, "subject"),
                   delivered_to=tuple(_delivered_to(msg)))
    try:
        return _classify(msg, base, unsubscribe_address.strip().lower())
    except (ValueError, TypeError, LookupError, AttributeError, UnicodeError, email.errors.MessageError) as exc:
        return _with(base, why=f"unreadable ({type(exc).__name__})")


def _classify(msg: Message, base: Finding, unsubscribe_address: str) -> Finding:
    report_type = msg.get_param("report-type", "", header="content-type") if msg.get_content_type() == \
        "multipart/report" else ""
    report_type = str(report_type).lower()
    if report_type == "delivery-status":
        return _dsn(msg, base)
    if report_type == "feedback-report":
        return _arf(msg, base)
    if unsubscribe_address and unsubscribe_address in base.delivered_to:
        return _unsubscribe(msg, base)
    if _auto_reply(msg):
        return _with(base, why="an auto-reply")
    if _from_mail_system(msg, base.subject):
        return _nonstandard(msg, base)
    return _with(base, why="not a bounce, a complaint or an unsubscribe")


def _with(base: Finding, **changes: object) -> Finding:
    fields = {**base.__dict__, **changes}
    return Finding(**fields)  # type: ignore[arg-type]


# RFC 3464 --------------------------------------------------------------------------------------


def _dsn(msg: Message, base: Finding) -> Finding:
    blocks = _report_blocks(msg, "message/delivery-status")
    failures = [f for f in (_recipient_failure(b) for b in blocks[1:]) if f is not None]
    if not blocks:
        return _nonstandard(msg, base)  # says it is a DSN, holds none: read it as Mailman would
    if not failures:
        return _with(base, why="a delivery report that is not a failure")
    return _with(base, kind=Kind.BOUNCE, failures=tuple(failures), original_id=_original_id(msg))


def _recipient_failure(block: Message) -> Failure | None:
    action = str(block.get("action", "")).strip().lower()
    status = _status(str(block.get("status", "")))
    if action in ("delivered", "relayed", "expanded"):
        return None
    if not status and action not in ("failed", "delayed"):
        return None
    permanent = status.startswith("5") if status else action == "failed"
    if action == "delayed":
        permanent = False
    address = _typed_address(str(block.get("final-recipient", "") or block.get("original-recipient", "")))
    diagnostic = _one_line(str(block.get("diagnostic-code", "")).partition(";")[2] or block.get("diagnostic-code", ""))
    return Failure(address, permanent, status, diagnostic)


STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def _status(text: str) -> str:
    match = STATUS.search(text)
    return match.group(0) if match else ""


def _typed_address(value: str) -> str:
    """'rfc822; ada@example.com' -> ada@example.com ("" for another address type)."""
    kind, sep, address = value.partition(";")
    if sep and kind.strip().lower() != "rfc822":
        return ""
    return _bare(address if sep else value)


# RFC 5965 --------------------------------------------------------------------------------------


def _arf(msg: Message, base: Finding) -> Finding:
    blocks = _report_blocks(msg, "message/feedback-report")
    if not blocks:
        return _with(base, why="a feedback report without its report part")
    fields = blocks[0]
    feedback_type = str(fields.get("feedback-type", "")).strip().lower()
    if feedback_type != "abuse":
        return _with(base, why=f"a feedback report of type {feedback_type or 'none'!r}, not abuse")
    original = _original_headers(msg)
    address = _bare(str(fields.get("original-rcpt-to", ""))) or (
        _bare(str(original.get("to", ""))) if original is not None else "")
    where = [str(fields.get("reported-domain", "")), str(fields.get("source-ip", ""))]
    detail = _one_line("abuse report" + "".join(f" {w}" for w in where if w.strip()))
    more = tuple(_addresses(original, ("return-path",))) if original is not None else ()
    return _with(base, kind=Kind.COMPLAINT, failures=(Failure(address, True, "", detail),),
                 original_id=_original_id(msg), delivered_to=base.delivered_to + more)


# Unsubscribe by mail ---------------------------------------------------------------------------

UNSUBSCRIBE_WORD = re.compile(r"\bunsubscribe\b", re.IGNORECASE)


def _unsubscribe(msg: Message, base: Finding) -> Finding:
    if _auto_reply(msg) or _from_mail_system(msg, base.subject):
        return _with(base, why="an automatic message to the unsubscribe address")
    sender = _bare(header_text(msg, "from"))
    said = UNSUBSCRIBE_WORD.search(base.subject) or any(
        UNSUBSCRIBE_WORD.search(line) for line in _first_lines(msg, 5))
    if not sender or not said:
        return _with(base, why="a mail to the unsubscribe address that does not say unsubscribe")
    return _with(base, kind=Kind.UNSUBSCRIBE, failures=(Failure(sender, True, "", "asked by mail"),))


def _first_lines(msg: Message, count: int) -> Iterator[str]:
    """The first non-empty lines of the first text/plain part, quotes and signatures left out."""
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            lines = (line.strip() for line in _text(part).splitlines())
            kept = [line for line in lines if line and not line.startswith(">")]
            yield from kept[:count]
            return


# Non-standard bounces: flufl.bounce ------------------------------------------------------------

MAIL_SYSTEMS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mail.delivery.subsystem",
                "mail-delivery-subsystem", "mdaemon", "bounce", "bounces", "nobody")
BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (status|failure|has failed|notification)|failure notice|returned mail|"
    r"mail delivery (failed|failure|system)|could not be delivered|non.?delivery|delivery problem",
    re.IGNORECASE)
AUTO_SUBJECT = re.compile(r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|away|vacation|"
                          r"abwesenheit|absence)", re.IGNORECASE)


def _auto_reply(msg: Message) -> bool:
    """An RFC 3834 auto-reply or one of the common vacation-responder marks."""
    auto = str(msg.get("auto-submitted", "")).strip().lower()
    if auto.startswith("auto-replied") and msg.get_content_type() != "multipart/report":
        return not _from_mail_system(msg, "")  # Postfix marks its bounces auto-replied too
    if any(msg.get(h) for h in ("x-autoreply", "x-autorespond", "x-autoresponse")):
        return True
    precedence = str(msg.get("precedence", "")).strip().lower()
    return precedence == "auto_reply" or bool(AUTO_SUBJECT.search(header_text(msg, "subject")))


def _from_mail_system(msg: Message, subject: str) -> bool:
    local = _bare(header_text(msg, "from")).partition("@")[0].lower()
    return local in MAIL_SYSTEMS or bool(subject and BOUNCE_SUBJECT.search(subject))


def _nonstandard(msg: Message, base: Finding) -> Finding:
    temporary, permanent = _flufl(msg)
    text = _body_text(msg)
    status = _status(text)
    diagnostic = _diagnostic_line(text)
    failures = [Failure(a, True, status if status.startswith("5") else "", diagnostic) for a in sorted(permanent)]
    failures += [Failure(a, False, status if status.startswith("4") else "", diagnostic)
                 for a in sorted(temporary - permanent)]
    if not failures:  # a mail system's failure with no address in it: VERP may still say who
        permanent_words = status.startswith("5") or "permanent" in text.lower()
        failures = [Failure("", permanent_words, status, diagnostic)]
    return _with(base, kind=Kind.BOUNCE, failures=tuple(failures), original_id=_original_id(msg))


def _flufl(msg: Message) -> tuple[set[str], set[str]]:
    """(temporary, permanent) addresses as flufl.bounce finds them; nothing when it cannot read one."""
    from flufl.bounce import all_failures

    logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)  # its detectors log every exception
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # noqa: BLE001 - its heuristics on hostile input are not our bug: not a bounce then
        return set(), set()
    return ({a for a in (_decode(x) for x in temporary) if a},
            {a for a in (_decode(x) for x in permanent) if a})


def _decode(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return _bare(text)


DIAGNOSTIC = re.compile(r"^.*\b([45]\d\d)[ -]([245]\.\d{1,3}\.\d{1,3})?.*$", re.MULTILINE)


def _diagnostic_line(text: str) -> str:
    match = DIAGNOSTIC.search(text)
    return _one_line(match.group(0)) if match else ""


# Shared readers --------------------------------------------------------------------------------


def _report_blocks(msg: Message, content_type: str) -> list[Message]:
    """The header blocks of the report part (compat32 gives message/delivery-status as a list)."""
    for part in msg.walk():
        if part.get_content_type() == content_type:
            payload = part.get_payload()
            if isinstance(payload, list):
                return [p for p in payload if isinstance(p, Message)]
            text = payload if isinstance(payload, str) else ""
            return [email.parser.HeaderParser().parsestr(block.strip() + "\n")
                    for block in re.split(r"\r?\n\s*\r?\n", text) if block.strip()]
    return []


def _original_headers(msg: Message) -> Message | None:
    """The headers of the message a report is about (message/rfc822 or text/rfc822-headers)."""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global") and part.is_multipart():
            inner = part.get_payload(0)
            if isinstance(inner, Message):
                return inner
        if kind in ("text/rfc822-headers", "message/rfc822-headers", "text/rfc822"):
            return email.parser.HeaderParser().parsestr(_text(part))
    return None


MESSAGE_ID = re.compile(r"^message-id:\s*(<[^<>\s]{1,900}>)", re.IGNORECASE | re.MULTILINE)


def _original_id(msg: Message) -> str:
    """The Message-ID of the newsletter a report is about: its attached headers, or its body."""
    original = _original_headers(msg)
    if original is not None and original.get("message-id"):
        return str(original["message-id"]).strip()
    match = MESSAGE_ID.search(_body_text(msg))
    if match:
        return match.group(1)
    for header in ("in-reply-to", "references"):
        ids = re.findall(r"<[^<>\s]+>", str(msg.get(header, "")))
        if ids:
            return ids[0]
    return ""


def _delivered_to(msg: Message) -> Iterator[str]:
    yield from dict.fromkeys(_addresses(msg, ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to",
                                              "to", "cc")))


def _addresses(msg: Message, headers: Iterable[str]) -> Iterator[str]:
    for header in headers:
        values = [str(v) for v in msg.get_all(header, [])]
        for _, address in email.utils.getaddresses(values):
            if "@" in address:
                yield address.strip().lower()


def _bare(value: str) -> str:
    """The address in 'Name <a@b>', '<a@b>' or 'a@b' ("" when there is none)."""
    address = email.utils.parseaddr(value.strip())[1].strip()
    return address if "@" in address and not any(c in address for c in "\r\n\0") else ""


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload[:MAX_SCAN].decode(charset, "replace")
    except LookupError:
        return payload[:MAX_SCAN].decode("utf-8", "replace")


def _body_text(msg: Message) -> str:
    parts = [_text(p) for p in msg.walk() if not p.is_multipart() and p.get_content_maintype() == "text"]
    return "\n".join(parts)[:MAX_SCAN]


def _one_line(value: object) -> str:
    return " ".join(str(value).split())[:300]


def header_text(msg: Message, name: str) -> str:
    """A header decoded from RFC 2047 to one line of text ("" when missing or unreadable)."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return _one_line(str(email.header.make_header(email.header.decode_header(str(value)))))
    except (ValueError, LookupError, UnicodeError, email.errors.MessageError):
        return _one_line(value)


def message_date(msg: Message) -> datetime | None:
    """The Date header as an aware datetime (None when missing or unreadable)."""
    try:
        when = email.utils.parsedate_to_datetime(str(msg.get("date", "")))
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else None


def fingerprint(msg: Message, raw: bytes) -> str:
    """The message's identity: its Message-ID, or (without one) its bytes."""
    message_id = str(msg.get("message-id", "")).strip()
    data = message_id.encode("utf-8", "replace") if message_id else raw
    return hashlib.sha256(data).hexdigest()[:32]
