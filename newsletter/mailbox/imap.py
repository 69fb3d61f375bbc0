"""The IMAP conversation with the return mailbox (imaplib, the standard library's client).

Everything that can go wrong before a change (no connection, TLS refused, a wrong password, a
missing folder) is found by `open_mailbox`, before a message is read, and is one MailboxError
line naming host:port or the folder. Messages are read with BODY.PEEK, so their unread state is
never touched; a dry run selects the folder read-only (EXAMINE). Recognised messages are moved
to [mailbox] processed_folder (MOVE, or COPY + delete where the server has no MOVE), or, when
there is none, marked with the keyword $NewsletterProcessed (\\Flagged on a server that takes no
keywords of ours) and skipped by the next run.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from newsletter.config_schema import MailboxSection
from newsletter.errors import MailboxError

PROCESSED = "$NewsletterProcessed"
MAX_BYTES = 2 * 1024 * 1024  # read at most this much of one message: the report parts come first
CHUNK = 50  # messages per FETCH


@dataclass(frozen=True)
class Fetched:
    """One message as the server holds it."""

    uid: bytes
    raw: bytes


class Mailbox:
    """A logged-in connection with the folder selected."""

    def __init__(self, conn: imaplib.IMAP4, section: MailboxSection, readonly: bool) -> None:
        self.conn = conn
        self.section = section
        self.readonly = readonly
        said = conn.untagged_responses.get("PERMANENTFLAGS", [])
        flags = b" ".join(f for f in said if isinstance(f, bytes))
        self.mark = PROCESSED if b"\\*" in flags else "\\Flagged"

    def unprocessed(self) -> Iterator[Fetched]:
        """Every message of the folder not yet marked processed, oldest first, unread state untouched."""
        uids = self._uids()
        for start in range(0, len(uids), CHUNK):
            chunk = b",".join(uids[start:start + CHUNK]).decode()
            data = self._uid("FETCH", chunk, f"(UID BODY.PEEK[]<0.{MAX_BYTES}>)")
            for item in data:
                if isinstance(item, tuple) and len(item) == 2:
                    match = re.search(rb"UID (\d+)", item[0])
                    if match:
                        yield Fetched(match.group(1), item[1])

    def _uids(self) -> list[bytes]:
        criterion = "UNFLAGGED" if self.mark == "\\Flagged" else f"UNKEYWORD {PROCESSED}"
        data = self._uid("SEARCH", criterion)
        found = data[0] if data and isinstance(data[0], bytes) else b""
        return sorted(found.split(), key=int)

    def mark_processed(self, uids: Sequence[bytes]) -> None:
        """Move the messages to processed_folder, or flag them; never on a read-only session."""
        if not uids or self.readonly:
            return
        uidset = b",".join(uids).decode()
        target = self.section.processed_folder
        if not target:
            self._uid("STORE", uidset, "+FLAGS.SILENT", f"({self.mark})")
            return
        if "MOVE" in self.conn.capabilities:
            self._uid("MOVE", uidset, quote(target))
            return
        # No MOVE (RFC 6851): copy, then delete. A crash in between leaves a copy in both folders;
        # the next run reads it again and, its events already recorded, changes nothing twice.
        self._uid("COPY", uidset, quote(target))
        self._uid("STORE", uidset, "+FLAGS.SILENT", "(\\Deleted)")
        if "UIDPLUS" in self.conn.capabilities:
            self._uid("EXPUNGE", uidset)
        else:
            self._uid("EXPUNGE")

    def _uid(self, command: str, *args: str) -> list[object]:
        """One UID command; a refusal or a dropped line is a MailboxError."""
        where = f"{self.section.host}:{self.section.port}"
        try:
            typ, data = self.conn.expunge() if command == "EXPUNGE" and not args else self.conn.uid(command, *args)
        except (imaplib.IMAP4.error, OSError) as exc:
            raise MailboxError(f"{where}: {command} failed: {_said(exc)}") from None
        if typ != "OK":
            raise MailboxError(f"{where}: {command} refused: {_said(data)}")
        return list(data)


@contextlib.contextmanager
def open_mailbox(section: MailboxSection, password: str, *, ca_file: Path | None = None,
                 readonly: bool = False) -> Iterator[Mailbox]:
    """Connect, log in and select the folder (checking processed_folder exists); log out on exit."""
    conn = _connect(section, ca_file)
    try:
        _login(conn, section, password)
        _select(conn, section, readonly)
        yield Mailbox(conn, section, readonly)
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            conn.logout()


def _connect(section: MailboxSection, ca_file: Path | None) -> imaplib.IMAP4:
    where = f"{section.host}:{section.port}"
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (ssl.SSLError, OSError) as exc:
        raise MailboxError(f"[mailbox] ca_file: cannot load CA certificates from {ca_file}: {exc}") from None
    try:
        if section.security == "tls":
            return imaplib.IMAP4_SSL(section.host, section.port, ssl_context=context, timeout=section.timeout)
        conn = imaplib.IMAP4(section.host, section.port, timeout=section.timeout)
        if section.security == "starttls":
            try:
                conn.starttls(ssl_context=context)
            except BaseException:
                with contextlib.suppress(OSError):
                    conn.shutdown()
                raise
        return conn
    except ssl.SSLCertVerificationError as exc:
        raise MailboxError(f"{where}: TLS failed: the server's certificate is not trusted ({exc.verify_message})",
                           hint="if it is signed by a private CA, point [mailbox] ca_file at it") from None
    except ssl.SSLError as exc:
        raise MailboxError(f"{where}: TLS failed ({exc.reason or exc})",
                           hint="check [mailbox] security (tls: port 993, starttls: port 143) and port") from None
    except TimeoutError:
        raise MailboxError(f"{where}: no answer within {section.timeout:g} s") from None
    except imaplib.IMAP4.error as exc:  # e.g. STARTTLS not offered
        raise MailboxError(f"{where}: {_said(exc)}",
                           hint="check [mailbox] security (tls: port 993, starttls: port 143) and port") from None
    except OSError as exc:
        raise MailboxError(f"{where}: cannot connect ({exc.strerror or exc})",
                           hint="check [mailbox] host and port") from None


def _login(conn: imaplib.IMAP4, section: MailboxSection, password: str) -> None:
    where = f"{section.host}:{section.port}"
    try:
        conn.login(section.username, password)
    except imaplib.IMAP4.error as exc:
        raise MailboxError(f"{where}: login as {section.username!r} refused ({_said(exc)})",
                           hint=f"check [mailbox] username and the password in ${section.password_env}") from None
    except (OSError, UnicodeEncodeError) as exc:
        raise MailboxError(f"{where}: login as {section.username!r} failed ({type(exc).__name__})") from None


def _select(conn: imaplib.IMAP4, section: MailboxSection, readonly: bool) -> None:
    where = f"{section.host}:{section.port}"
    try:
        typ, data = conn.select(quote(section.folder), readonly=readonly)
        if typ != "OK":
            raise MailboxError(f"{where}: no such folder: {section.folder!r} ({_said(data)})",
                               hint="check [mailbox] folder")
        if section.processed_folder:
            typ, listed = conn.list('""', quote(section.processed_folder))
            if typ != "OK" or not [d for d in listed if d]:
                raise MailboxError(f"{where}: no such folder: {section.processed_folder!r} ([mailbox] "
                                   "processed_folder)",
                                   hint="create it in the mailbox, or leave processed_folder empty to flag instead")
    except (imaplib.IMAP4.error, OSError, UnicodeEncodeError) as exc:
        raise MailboxError(f"{where}: cannot open the folder {section.folder!r} ({_said(exc)})",
                           hint="check [mailbox] folder (an ASCII name)") from None


def quote(folder: str) -> str:
    """A folder name as an IMAP quoted string."""
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _said(value: object) -> str:
    """What the server said, as one short line of text."""
    if isinstance(value, BaseException) and value.args:
        value = value.args[0]
    if isinstance(value, list):
        value = b" ".join(v for v in value if isinstance(v, bytes))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split())[:200] or "no reason given"
