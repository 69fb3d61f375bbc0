"""The test IMAP server itself: a real Dovecot on loopback, plain and TLS, that refuses a wrong password."""

from __future__ import annotations

import imaplib

import pytest

from tests.fakes import imap
from tests.fakes.imap import Dovecot, MailboxUser, client_context

dovecot = imap.dovecot  # pytest fixtures: one Dovecot for the session, a fresh mailbox user per test
imap_mailbox = imap.imap_mailbox

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hello\r\n\r\nbody\r\n"


def test_a_message_appended_is_there_unread(imap_mailbox: MailboxUser) -> None:
    imap_mailbox.append(MESSAGE)
    [(raw, flags)] = imap_mailbox.messages()
    assert raw.replace(b"\r\n", b"\n") == MESSAGE.replace(b"\r\n", b"\n")
    assert "\\Seen" not in flags
    assert {"INBOX", "Processed"} <= set(imap_mailbox.folders())


def test_each_test_has_its_own_mailbox(dovecot: Dovecot, imap_mailbox: MailboxUser) -> None:
    imap_mailbox.append(MESSAGE)
    assert dovecot.user().messages() == []


def test_tls_with_the_self_signed_certificate(imap_mailbox: MailboxUser) -> None:
    conn = imaplib.IMAP4_SSL("127.0.0.1", imap_mailbox.tls_port, ssl_context=client_context(imap_mailbox))
    assert conn.login(imap_mailbox.username, imap_mailbox.password)[0] == "OK"
    conn.logout()
    plain = imaplib.IMAP4("127.0.0.1", imap_mailbox.port)
    plain.starttls(ssl_context=client_context(imap_mailbox))
    assert plain.login(imap_mailbox.username, imap_mailbox.password)[0] == "OK"
    plain.logout()


def test_an_untrusted_certificate_is_refused(imap_mailbox: MailboxUser) -> None:
    import ssl

    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL("127.0.0.1", imap_mailbox.tls_port, ssl_context=ssl.create_default_context())


def test_a_wrong_password_is_refused(imap_mailbox: MailboxUser) -> None:
    conn = imaplib.IMAP4("127.0.0.1", imap_mailbox.port)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        conn.login(imap_mailbox.username, "not-the-password")
