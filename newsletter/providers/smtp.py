"""SMTP through the standard library: one connection for many messages, reopened when dropped.

Every message is the complete MIME message newsletter.message builds (multipart/alternative,
Date, Message-ID, List-* headers), produced quickly by providers.mime. The DATA exchange is
written out here rather than left to smtplib.sendmail so that we know when a failure is
ambiguous: a connection lost before the message body went out is retried on a new
connection; one lost after it (while waiting for the server's 250) leaves that recipient
*pending*, since the server may have queued it.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING

from newsletter.errors import ProviderError
from newsletter.providers import (
    FAILED,
    PENDING,
    SENT,
    Exhausted,
    InDoubt,
    Letter,
    Outcome,
    Outgoing,
    Report,
    RetryPolicy,
    Transient,
)
from newsletter.providers.mime import MessageFactory

if TYPE_CHECKING:
    from newsletter.config import Settings

BATCH_SIZE = 100  # recipients per ledger batch; each recipient's result is recorded as it happens
_LEADING_DOT = re.compile(rb"(?m)^\.")


class Refused(Exception):
    """The server refused this one recipient or message (a 4xx/5xx answer)."""


class SMTPProvider:
    """Send each message over one reused connection, with STARTTLS, TLS or neither."""

    name = "smtp"
    batch_size = BATCH_SIZE

    def __init__(self, host: str, port: int, *, security: str = "starttls", username: str = "",
                 password: str = "", timeout: float = 30.0, sender: str = "",
                 policy: RetryPolicy | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self._password, self.timeout = username, password, timeout
        self.sender = sender
        self.policy = policy or RetryPolicy()
        self.ssl_context = ssl_context
        self._conn: smtplib.SMTP | None = None
        self._factory: MessageFactory | None = None
        self.connections = 0  # how many times a connection was opened (for the report and tests)

    @classmethod
    def from_settings(cls, settings: Settings, password: str, policy: RetryPolicy) -> SMTPProvider:
        """Build from [smtp]; the password comes from the caller (the env var [smtp] password_env)."""
        s = settings.smtp
        return cls(s.host, s.port, security=s.security, username=s.username, password=password,
                   timeout=s.timeout, sender=settings.sender_address, policy=policy)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def deliver(self, letter: Letter, batch: Sequence[Outgoing], report: Report) -> None:
        """Send one message per recipient; report each as soon as the server answers."""
        messages = self._messages(letter)
        for out in batch:
            email = out.recipient.email
            data, message_id = messages.build(out.recipient)
            try:
                self.policy.call(lambda e=email, d=data: self._send_one(e, d))  # type: ignore[misc]
            except Refused as exc:
                report(Outcome((email,), FAILED, str(exc)))
            except InDoubt as exc:
                report(Outcome((email,), PENDING, str(exc)))
            except Exhausted as exc:
                # A server we cannot reach will refuse every later message as well: stop the send.
                raise ProviderError(f"cannot send through the SMTP server {self.where}: {exc}",
                                    hint="check [smtp] host, port and security, then run the send again") from None
            else:
                report(Outcome((email,), SENT, message_id))

    def _messages(self, letter: Letter) -> MessageFactory:
        if self._factory is None or self._factory.letter is not letter:
            self._factory = MessageFactory(letter)
        return self._factory

    def close(self) -> None:
        """Say QUIT and close the connection if one is open."""
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                self._conn.close()
            self._conn = None

    def _connection(self) -> smtplib.SMTP:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _connect(self) -> smtplib.SMTP:
        context = self.ssl_context or ssl.create_default_context()
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
        except smtplib.SMTPAuthenticationError as exc:
            raise ProviderError(f"the SMTP server {self.where} refused the login for {self.username!r} "
                                f"({exc.smtp_code})", hint="check [smtp] username and the password variable "
                                "named by [smtp] password_env") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise ProviderError(f"the SMTP server {self.where} does not support this: {exc}",
                                hint="check [smtp] security (starttls, tls or none)") from None
        except (smtplib.SMTPException, OSError) as exc:
            if conn is not None:
                conn.close()
            raise Transient(f"cannot connect to {self.where}: {exc}") from None
        self.connections += 1
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _send_one(self, recipient: str, data: bytes) -> None:
        """MAIL, RCPT, DATA for one message; Transient until the body is out, InDoubt after."""
        conn = self._connection()
        try:
            self._envelope(conn, recipient)
            body = _LEADING_DOT.sub(b"..", data)
            conn.send(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise Transient(f"connection to {self.where} lost: {exc}") from None
        try:
            code, reply = conn.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise InDoubt(f"connection to {self.where} lost after the message was sent ({exc})") from None
        if code != 250:
            raise Refused(f"message refused by {self.where}: {code} {reply.decode(errors='replace')}")

    def _envelope(self, conn: smtplib.SMTP, recipient: str) -> None:
        """MAIL FROM, RCPT TO and DATA up to the server's 354 (nothing is queued before the body)."""
        conn.ehlo_or_helo_if_needed()
        options: list[str] = []
        if not (recipient + self.sender).isascii():
            if not conn.has_extn("smtputf8"):
                raise Refused(f"{self.where} does not accept non-ASCII addresses (no SMTPUTF8)")
            options = ["SMTPUTF8"]
        code, reply = conn.mail(self.sender, options)
        if 400 <= code < 500:  # busy, or closing the connection (421): try again shortly
            self._drop()
            raise Transient(f"{self.where} answered {code} {reply.decode(errors='replace')}")
        if code != 250:
            self._reset(conn)
            raise ProviderError(f"the SMTP server {self.where} refused the sender {self.sender}: "
                                f"{code} {reply.decode(errors='replace')}")
        code, reply = conn.rcpt(recipient)
        if code == 421:
            self._drop()
            raise Transient(f"{self.where} closed the connection: {reply.decode(errors='replace')}")
        if code not in (250, 251):
            self._reset(conn)
            raise Refused(f"refused by {self.where}: {code} {reply.decode(errors='replace')}")
        code, reply = conn.docmd("DATA")
        if code != 354:
            self._reset(conn)
            raise Refused(f"DATA refused by {self.where}: {code} {reply.decode(errors='replace')}")

    def _reset(self, conn: smtplib.SMTP) -> None:
        try:
            conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()
