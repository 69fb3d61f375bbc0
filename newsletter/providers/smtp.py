"""SMTP through the standard library: one connection for many messages, reopened when dropped.

Every message is the complete MIME message newsletter.render.message builds (multipart/alternative,
Date, Message-ID, List-* headers), produced quickly by providers.mime. The DATA exchange is
written out here rather than left to smtplib.sendmail so that we know when a failure is
ambiguous: a connection lost before the message body went out is retried on a new
connection; one lost after it (while waiting for the server's 250) leaves that recipient
in doubt, since the server may have queued it.

What retrying cannot fix stops the send at once with a hint naming the cause: a certificate
that cannot be verified, no TLS version in common, a refused login, a server that wants a
login we were not given. Server text is redacted (providers.safety) before it is shown or
stored, and a password never goes out over a connection that is not encrypted unless the
server is this machine.

The envelope sender (MAIL FROM, where bounces go) is [smtp] return_path when set, else the From
address; with [smtp] verp each recipient gets its own, `bounces+TOKEN@domain` (newsletter.mailbox.verp),
so the return mailbox can tell whom a bounce is about. The From: header never changes.

With [smtp] connections = N the send loop calls deliver() from N threads at once, each with its
own `slot`: each slot has its own connection (its own TLS session and login), opened when first
needed and kept for the whole send. A relay's rate limit (421, a 4.7.x deferral, "too many") is
not the recipient's fault: it raises RateLimited, which pauses every slot (the RetryPolicy's
shared pause) and halves the shared Pace ([smtp] max_per_minute spaces the messages of all
slots together), and the message is tried again. A relay's "daily quota exceeded" stops the send:
nothing after it would go through today.
"""

from __future__ import annotations

import re
import smtplib
import ssl
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.errors import ProviderError, RecipientError
from newsletter.mailbox.verp import token_for, verp_address
from newsletter.providers.base import Letter, Outcome, Outgoing, Report, State, on_disk
from newsletter.providers.mime import MessageFactory
from newsletter.providers.pace import Pace
from newsletter.providers.retry import Exhausted, InDoubt, RateLimited, RetryPolicy, Transient
from newsletter.providers.safety import is_loopback, redact
from newsletter.render.message import ascii_address
from newsletter.subscribers.schema import email_key
from newsletter.tokens import parse_secrets

if TYPE_CHECKING:
    from newsletter.config import Settings

BATCH_SIZE = 100  # recipients per ledger batch; each recipient's result is recorded as it happens
_LEADING_DOT = re.compile(rb"(?m)^\.")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DROPPED = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)  # the line went, not the TLS
_NO_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST")
# What relays say when sending too fast (Postfix, Exim, Gmail, Microsoft 365, SES, Fastmail).
_TOO_FAST = re.compile(rb"too many|too fast|rate.?limit|\brate\b|throttl|slow down", re.IGNORECASE)
# A relay's own daily cap (Gmail 5.4.5, SES, Fastmail, Microsoft 365); not a recipient's full mailbox (5.2.2).
_QUOTA = re.compile(rb"\b[45]\.4\.5\b|sending (limit|quota)|daily (user |message )?(sending )?(limit|quota)"
                    rb"|submissionquota", re.IGNORECASE)


class Refused(Exception):
    """The server refused this one recipient or message (a 4xx/5xx answer)."""


class SMTPProvider:
    """Send each message over one of `connections` reused connections, with STARTTLS, TLS or neither."""

    name = "smtp"
    batch_size = BATCH_SIZE
    handoff_size: int | None = 1  # one message a call, each recorded in doubt just before it goes

    def __init__(self, host: str, port: int, *, security: str = "starttls", username: str = "",
                 password: str = "", timeout: float = 30.0, sender: str = "", verp: bool = False,
                 policy: RetryPolicy | None = None, ssl_context: ssl.SSLContext | None = None,
                 connections: int = 1, max_per_minute: int = 0) -> None:
        if username and security == "none" and not is_loopback(host):
            raise ProviderError(f"refusing to send the password for {username!r} to {host}:{port} unencrypted "
                                '([smtp] security = "none")',
                                hint='set [smtp] security = "starttls" (port 587) or "tls" (port 465); "none" '
                                     "with a login is allowed only for this machine (localhost, 127.0.0.1, ::1)")
        self.host, self.port, self.security = host, port, security
        self.username, self._password, self.timeout = username, password, timeout
        # What a server may echo back: the password, and the AUTH PLAIN line that carries it.
        self._secrets = (password, f"\0{username}\0{password}") if password else ()
        self.sender = _envelope_sender(sender)
        self.verp = verp and "@" in sender  # each recipient's own MAIL FROM: sender+TOKEN@domain
        self.policy = policy or RetryPolicy()
        self.ssl_context = ssl_context
        self.concurrency = max(1, connections)  # deliver() calls in flight at once, one per slot
        self._conns: list[smtplib.SMTP | None] = [None] * self.concurrency  # each slot's own session
        self.pace = Pace(max_per_minute)
        self._lock = threading.Lock()
        self._factory: MessageFactory | None = None
        self.connections = 0  # how many times a connection was opened (for the report and tests)

    @classmethod
    def from_settings(cls, settings: Settings, password: str, policy: RetryPolicy) -> SMTPProvider:
        """Build from [smtp]; the password comes from the caller (the env var [smtp] password_env)."""
        s = settings.smtp
        context = tls_context(settings.path(s.ca_file)) if s.ca_file else None
        return cls(s.host, s.port, security=s.security, username=s.username, password=password,
                   timeout=s.timeout, sender=s.return_path or settings.sender_address,
                   verp=bool(s.return_path) and s.verp, policy=policy, ssl_context=context,
                   connections=s.connections, max_per_minute=s.max_per_minute)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def deliver(self, letter: Letter, batch: Sequence[Outgoing], report: Report, *, slot: int = 0,
                durable: Callable[[], None] = on_disk) -> None:
        """Send one message per recipient over this slot's connection; report each as the server answers.

        The envelope (MAIL, RCPT, DATA) goes while the ledger's in-doubt record is synced; the
        message's data only once it is on disk (`durable`): an envelope without data delivers nothing.
        """
        messages = self._messages(letter)
        for out in batch:
            email = out.recipient.email
            try:
                to = _envelope_recipient(email)
                data, message_id = messages.build(out.recipient)
                sender = self._sender_for(letter, email)
                self.policy.call(lambda t=to, d=data, f=sender: self._send_one(slot, t, d, f, durable))  # type: ignore[misc]
            except (RecipientError, Refused) as exc:
                report(Outcome((email,), State.FAILED, self._redact(str(exc))))
            except InDoubt as exc:
                report(Outcome((email,), State.IN_DOUBT, str(exc)))
            except Exhausted as exc:
                # A server we cannot reach will refuse every later message as well: stop the send.
                raise ProviderError(f"cannot send through the SMTP server {self.where}: {exc}",
                                    hint="check [smtp] host, port and security, then run the send again") from None
            else:
                report(Outcome((email,), State.SENT, message_id))

    def _sender_for(self, letter: Letter, email: str) -> str:
        """MAIL FROM for one recipient: the return path, with its VERP token when [smtp] verp is on."""
        if not self.verp:
            return self.sender
        secrets = parse_secrets(letter.secret)
        if not secrets:  # refused before the send starts (providers.missing_credentials)
            raise ProviderError("[smtp] verp needs the unsubscribe secret to make its tokens")
        return verp_address(self.sender, token_for(secrets, email_key(email), letter.rendered.slug))

    def _messages(self, letter: Letter) -> MessageFactory:
        with self._lock:  # built once per send, whichever slot asks first
            if self._factory is None or self._factory.letter is not letter:
                self._factory = MessageFactory(letter)
            return self._factory

    def prepare(self, letter: Letter, batch: Sequence[Outgoing], remaining: int) -> None:
        """Nothing to prepare: each message is built just before it goes."""

    def create_batch(self) -> str:
        """SMTP cannot schedule (send.schedule refuses --schedule before this)."""
        raise ProviderError("the smtp provider cannot schedule a send", hint="use --provider sendgrid")

    def close(self) -> None:
        """Say QUIT and close every slot's connection that is open."""
        for slot, conn in enumerate(self._conns):
            if conn is not None:
                try:
                    conn.quit()
                except (smtplib.SMTPException, OSError):
                    conn.close()
                self._conns[slot] = None

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def _said(self, code: int, reply: bytes | str) -> str:
        """A server's answer, fit to print and store: decoded and redacted."""
        text = reply.decode("utf-8", errors="replace") if isinstance(reply, bytes) else reply
        return self._redact(f"{code} {text}")

    def _connection(self, slot: int) -> smtplib.SMTP:
        conn = self._conns[slot]
        if conn is None:
            conn = self._conns[slot] = self._connect()
        return conn

    def _connect(self) -> smtplib.SMTP:
        context = self.ssl_context or tls_context(None)
        conn: smtplib.SMTP | None = None
        try:
            if self.security == "tls":
                conn = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.security == "starttls":
                    conn.starttls(context=context)
            if self.username:
                conn.login(self.username, self._password)
        except (smtplib.SMTPException, OSError) as exc:
            if conn is not None:
                conn.close()
            raise self._connect_failure(exc) from None
        with self._lock:
            self.connections += 1
        return conn

    def _connect_failure(self, exc: Exception) -> Exception:
        """ProviderError for what retrying cannot fix; Transient (or RateLimited) for the rest."""
        if isinstance(exc, smtplib.SMTPResponseException) and 400 <= exc.smtp_code < 500:
            # A busy relay (421 at the greeting, 454 "too many logins"): not a refused login.
            return self._deferred(exc.smtp_code, exc.smtp_error, "would not open a session")
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return ProviderError(f"the SMTP server {self.where} refused the login for {self.username!r} "
                                 f"({self._said(exc.smtp_code, exc.smtp_error)})",
                                 hint="check [smtp] username and the password variable named by [smtp] password_env")
        if isinstance(exc, smtplib.SMTPNotSupportedError) or "authentication method" in str(exc):
            hint = ("many servers offer a login only over TLS: set [smtp] security = \"starttls\""
                    if self.username and self.security == "none" else "check [smtp] security (starttls, tls or none)")
            return ProviderError(f"the SMTP server {self.where} does not support this: {self._redact(str(exc))}",
                                 hint=hint)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return ProviderError(f"the certificate of the SMTP server {self.where} cannot be verified: "
                                 f"{exc.verify_message or exc.reason}",
                                 hint="if it is signed by a private CA, point [smtp] ca_file (or SSL_CERT_FILE) at "
                                      "that CA's certificate; [smtp] host must be a name the certificate holds")
        if isinstance(exc, ssl.SSLError) and not isinstance(exc, _DROPPED):
            return ProviderError(f"TLS with the SMTP server {self.where} failed: {exc.reason or exc}",
                                 hint=_tls_hint(str(exc.reason or exc), self.security))
        if isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600:
            return ProviderError(f"the SMTP server {self.where} refused the connection: "
                                 f"{self._said(exc.smtp_code, exc.smtp_error)}",
                                 hint="check [smtp] host and port")
        return Transient(f"cannot connect to {self.where}: {self._redact(str(exc))}")

    def _drop(self, slot: int) -> None:
        conn = self._conns[slot]
        if conn is not None:
            conn.close()
            self._conns[slot] = None

    def _send_one(self, slot: int, recipient: str, data: bytes, sender: str,
                  durable: Callable[[], None] = on_disk) -> None:
        """MAIL, RCPT, DATA for one message; Transient until the body is out, InDoubt after."""
        self.pace.take()
        conn = self._connection(slot)
        try:
            self._envelope(slot, conn, sender, recipient, not data.split(b"\r\n\r\n", 1)[0].isascii())
            try:
                durable()
            except BaseException:
                self._drop(slot)  # in the middle of DATA: this connection cannot go on
                raise
            body = _LEADING_DOT.sub(b"..", data)
            conn.send(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop(slot)
            raise Transient(f"connection to {self.where} lost: {self._redact(str(exc))}") from None
        try:
            code, reply = conn.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop(slot)
            raise InDoubt(f"connection to {self.where} lost after the message was sent "
                          f"({self._redact(str(exc))})") from None
        if code != 250:
            self._refused(slot, code, reply, "refused the message", "message refused by")

    def _envelope(self, slot: int, conn: smtplib.SMTP, sender: str, recipient: str, utf8_headers: bool) -> None:
        """MAIL FROM, RCPT TO and DATA up to the server's 354 (nothing is queued before the body)."""
        conn.ehlo_or_helo_if_needed()
        code, reply = conn.mail(sender, self._mail_options(conn, recipient, utf8_headers))
        if 400 <= code < 500:  # busy, or closing the connection (421): try again shortly
            self._drop(slot)
            if _too_fast(code, reply):
                raise self._deferred(code, reply, "answered")
            raise Transient(f"{self.where} answered {self._said(code, reply)}")
        if code != 250:
            self._reset(slot, conn)
            raise self._stop(code, reply, f"refused the sender {sender}")
        code, reply = conn.rcpt(recipient)
        if code not in (250, 251):
            if code != 421:
                self._reset(slot, conn)
            if code == 530 or (_relay_denied(reply) and not self.username):
                raise self._stop(code, reply, f"refused the recipient {recipient}")
            self._refused(slot, code, reply, f"refused the recipient {recipient}", "refused by")
        code, reply = conn.docmd("DATA")
        if code != 354:
            if code != 421:
                self._reset(slot, conn)
            if code == 530:
                raise self._stop(code, reply, "refused the message")
            self._refused(slot, code, reply, "refused the message", "DATA refused by")

    def _refused(self, slot: int, code: int, reply: bytes, what: str, refused_by: str) -> None:
        """Raise what a refusal means: the relay's pace or quota, or this one recipient's failure."""
        if code == 421:  # the server is closing this connection: never the recipient's fault
            self._drop(slot)
        if _QUOTA.search(reply):
            raise ProviderError(f"the SMTP server {self.where} {what}: {self._said(code, reply)}",
                                hint="the relay's daily quota is used up: set [smtp] max_per_day below it and "
                                     "run the same command again tomorrow (who got it is in the ledger)")
        if code == 421 or _too_fast(code, reply):
            raise self._deferred(code, reply, "answered")
        raise Refused(f"{refused_by} {self.where}: {self._said(code, reply)}")

    def _deferred(self, code: int, reply: bytes | str, what: str) -> RateLimited:
        """The relay wants us slower: every slot pauses and the shared pace halves; the message waits."""
        self.pace.slow_down()
        return RateLimited(f"{self.where} {what} {self._said(code, reply)} (slowing down)", None)

    def _mail_options(self, conn: smtplib.SMTP, recipient: str, utf8_headers: bool) -> list[str]:
        """SMTPUTF8 (and 8BITMIME) when an address or a header is not ASCII (RFC 6531, 6532)."""
        if recipient.isascii() and self.sender.isascii() and not utf8_headers:
            return []
        if not conn.has_extn("smtputf8"):
            if not self.sender.isascii():
                raise ProviderError(f"the SMTP server {self.where} does not offer SMTPUTF8, which the sender "
                                    f"address {self.sender} needs", hint="use an ASCII [sender] from address")
            raise Refused(f"{self.where} does not offer SMTPUTF8, which this "
                          f"{'address' if not recipient.isascii() else 'message'} needs (non-ASCII)")
        return ["SMTPUTF8", "BODY=8BITMIME"] if conn.has_extn("8bitmime") else ["SMTPUTF8"]

    def _stop(self, code: int, reply: bytes, what: str) -> ProviderError:
        """The whole send stops: every later message would meet the same answer."""
        text = self._said(code, reply)
        if "STARTTLS" in text.upper():
            hint = 'the server wants TLS first: set [smtp] security = "starttls"'
        elif code == 530 or _relay_denied(reply):
            hint = ("the server wants a login: set [smtp] username and export the password in the variable "
                    "[smtp] password_env names" if not self.username else "check [smtp] username")
        else:
            hint = "check [sender] from and what the SMTP server accepts"
        return ProviderError(f"the SMTP server {self.where} {what}: {text}", hint=hint)

    def _reset(self, slot: int, conn: smtplib.SMTP) -> None:
        try:
            conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop(slot)


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The system's trusted CAs (SSL_CERT_FILE and SSL_CERT_DIR are honoured), or only ca_file's."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    except (ssl.SSLError, OSError) as exc:
        raise ProviderError(f"[smtp] ca_file: cannot load CA certificates from {ca_file}: {exc}",
                            hint="ca_file must be a PEM file holding one or more certificates") from None


def _tls_hint(reason: str, security: str) -> str:
    if any(code in reason.upper() for code in _NO_TLS):
        return ('the server does not speak TLS on this port: use security = "starttls" (port 587) or '
                '"tls" (port 465)' if security == "tls" else "check [smtp] port and security")
    if "VERSION" in reason.upper() or "PROTOCOL" in reason.upper():
        return "the server and this machine share no TLS version (this machine needs TLS 1.2 or later)"
    return "check [smtp] security and port, and the server's TLS settings"


def _too_fast(code: int, reply: bytes) -> bool:
    """A relay's rate limit: 421, 450/451/452 with an enhanced 4.7.x code, or words saying so."""
    if not 400 <= code < 500:
        return False
    return code == 421 or (code in (450, 451, 452) and reply.lstrip().startswith(b"4.7.")) or bool(
        _TOO_FAST.search(reply))


def _relay_denied(reply: bytes) -> bool:
    """Relay access denied: the server relays only for logged-in users (Postfix, Exim, Sendmail)."""
    return b"relay" in reply.lower() and (b"denied" in reply.lower() or b"not permitted" in reply.lower())


def _envelope_recipient(email: str) -> str:
    """The address for RCPT TO: A-label domain; Unicode only where the local part is (SMTPUTF8)."""
    if _CONTROL.search(email):
        raise RecipientError("the address contains a control character")
    return ascii_address(email) or email


def _envelope_sender(sender: str) -> str:
    try:
        return _envelope_recipient(sender) if sender else sender
    except RecipientError:
        return sender
