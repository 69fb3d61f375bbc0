"""An aiosmtpd server on 127.0.0.1 that records every message and can misbehave on purpose.

It can refuse chosen recipients (550), drop the connection after receiving a message's data
without answering (the client cannot know whether it was queued), require AUTH, offer
STARTTLS (or TLS from the start) with a self-signed certificate made on the spot, offer
SMTPUTF8 or not, and echo a wrong password back in its 535 answer (as careless servers do).
Like a relay it can take a while over each message (`delay`, without holding up other sessions),
and answer as a rate-limited relay does: the next `rate_limited` commands at `rate_stage` (MAIL,
RCPT or DATA, the reply to the body) get `rate_reply` instead of being accepted.

Run alone (for bench/): python -m tests.fakes.smtp [--delay SECONDS]  (prints host:port)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any


@dataclass
class Received:
    """One message the server accepted (or swallowed before dropping the connection)."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: tuple[str, int]
    smtputf8: bool = False  # MAIL FROM carried SMTPUTF8

    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


@dataclass
class RecordingHandler:
    """aiosmtpd handler: records messages; refuses and drops as told."""

    refuse: set[str] = field(default_factory=set)  # lower-case addresses answered 550 at RCPT
    drop_after_data: set[int] = field(default_factory=set)  # message numbers (1-based) to swallow, then hang up
    keep_data: bool = True
    messages: list[Received] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)  # client addresses seen
    connections: int = 0  # SMTP sessions that sent at least one message
    data_count: int = 0
    delay: float = 0.0  # seconds each message takes before the server answers it (a relay at work)
    rate_limited: int = 0  # how many more commands at rate_stage get rate_reply
    rate_stage: str = "RCPT"  # MAIL, RCPT or DATA (the answer to the message itself)
    rate_reply: str = "451 4.7.1 Too many messages, slow down"
    deferred: int = 0  # rate_reply answers given
    in_data: int = 0  # sessions whose message is being taken right now
    most_in_data: int = 0  # the most at once: how many connections really worked in parallel
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _defer(self, stage: str) -> str | None:
        """rate_reply while rate_limited lasts at this stage."""
        with self.lock:
            if stage != self.rate_stage or self.rate_limited <= 0:
                return None
            self.rate_limited -= 1
            self.deferred += 1
            return self.rate_reply

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          mail_options: list[str]) -> str:
        deferred = self._defer("MAIL")
        if deferred:
            return deferred
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if address.lower() in self.refuse:
            return f"550 5.1.1 <{address}>: no such user here"
        deferred = self._defer("RCPT")
        if deferred:
            return deferred
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        deferred = self._defer("DATA")
        if deferred:
            return deferred
        if self.delay:
            with self.lock:
                self.in_data += 1
                self.most_in_data = max(self.most_in_data, self.in_data)
            await asyncio.sleep(self.delay)
            with self.lock:
                self.in_data -= 1
        with self.lock:
            self.data_count += 1
            number = self.data_count
            self.peers.add(session.peer)
            if not getattr(session, "counted", False):
                session.counted = True
                self.connections += 1
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.content if self.keep_data else b"", session.peer,
                                          bool(getattr(envelope, "smtp_utf8", False))))
        if number in self.drop_after_data:
            server.transport.abort()  # queued, but the client never hears so
            return "421 gone"
        return "250 2.0.0 queued"

    def delivered_to(self) -> list[str]:
        with self.lock:
            return [r.lower() for m in self.messages for r in m.rcpt_tos]


def free_port() -> int:
    """A port nobody listens on right now (aiosmtpd needs a fixed one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1/localhost, valid for a day."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class FakeSMTP:
    """A running aiosmtpd Controller around a RecordingHandler."""

    def __init__(self, handler: RecordingHandler | None = None, *, users: dict[str, str] | None = None,
                 tls: tuple[Path, Path] | None = None, implicit_tls: bool = False,
                 tls_maximum: ssl.TLSVersion | None = None, auth_required: bool = False,
                 smtputf8: bool = False, echo_password: bool = False) -> None:
        from aiosmtpd.controller import Controller

        self.handler = handler or RecordingHandler()
        self.port = free_port()
        self.logins: list[str] = []
        self.attempts = 0  # AUTH attempts, right or wrong
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": smtputf8}
        if users is not None:
            kwargs.update(authenticator=self._authenticator(users, echo_password),
                          auth_require_tls=tls is not None and not implicit_tls, auth_required=auth_required)
        context = None
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            if tls_maximum is not None:
                context.maximum_version = tls_maximum
            if not implicit_tls:
                kwargs.update(tls_context=context, require_starttls=True)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     ssl_context=context if implicit_tls else None, **kwargs)

    def _authenticator(self, users: dict[str, str], echo_password: bool) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            self.attempts += 1
            ok = isinstance(data, LoginPassword) and users.get(data.login.decode()) == data.password.decode()
            if ok:
                self.logins.append(data.login.decode())
            elif echo_password and isinstance(data, LoginPassword):
                return AuthResult(success=False, handled=False,
                                  message=f"535 5.7.8 {data.password.decode()} is not the password")
            return AuthResult(success=ok, handled=False, auth_data=data)

        return authenticator

    def start(self) -> FakeSMTP:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


def main() -> None:
    """Serve until killed, keeping only envelopes (for bench/)."""
    import argparse
    import time

    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per message")
    fake = FakeSMTP(RecordingHandler(keep_data=False, delay=parser.parse_args().delay)).start()
    print(f"127.0.0.1:{fake.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
