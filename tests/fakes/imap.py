"""A real Dovecot (Debian's dovecot-imapd) on 127.0.0.1, started with a config file of its own.

Never a mock of imaplib: `newsletter subscribers bounces` talks to a real IMAP server. One Dovecot
runs for the whole test session (it starts in about a second); each test gets a mailbox user of its
own (`Dovecot.user()`), so tests never see each other's messages: the server takes any user name
with the session's password (a static passdb), and each name gets its own maildir at first login.

The server listens on two ports: plain IMAP (STARTTLS offered, plaintext login allowed, as on a
loopback-only test server) and IMAPS with a self-signed certificate for localhost/127.0.0.1 made on
the spot (tests.fakes.smtp.self_signed). Its folder is made outside pytest's private tmp folder,
because Dovecot's login processes run as an unprivileged user that must reach their sockets.

Run alone: python -m tests.fakes.imap  (prints the ports, a user and its password; Ctrl-C stops it)
"""

from __future__ import annotations

import contextlib
import imaplib
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes.smtp import free_port, self_signed

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
INSTALL_HINT = "install Debian's dovecot-imapd (apt-get install dovecot-imapd; .ci/run does)"
_users = itertools.count(1)

_CONFIG = """\
# Written by tests/fakes/imap.py: a throwaway IMAP server for the tests, loopback only.
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
# Plaintext logins on the plain port: the server is loopback only and holds test users.
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 1
mail_location = maildir:{base}/mail/%u
# Any user name logs in with the session's one password: each test takes a new name, so a new maildir.
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
"""


@dataclass
class MailboxUser:
    """One test's mailbox on the running Dovecot: where it is and how to log in."""

    host: str
    port: int  # plain IMAP (STARTTLS offered)
    tls_port: int  # IMAPS
    username: str
    password: str = field(repr=False)
    cert: Path  # the server's self-signed certificate: a CA file that trusts it

    def connect(self) -> imaplib.IMAP4:
        """A logged-in plain connection (the test's own view of the mailbox)."""
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        conn.login(self.username, self.password)
        return conn

    def create(self, folder: str) -> None:
        """Make a folder (e.g. the processed folder)."""
        with self._session() as conn:
            _ok(conn.create(_quote(folder)), f"CREATE {folder}")

    def append(self, data: bytes, folder: str = "INBOX", flags: str = "") -> None:
        """Deliver a message into a folder as an MTA would (IMAP APPEND), unread unless flags say so."""
        with self._session() as conn:
            _ok(conn.append(_quote(folder), f"({flags})" if flags else None, None, data), f"APPEND to {folder}")

    def messages(self, folder: str = "INBOX") -> list[tuple[bytes, str]]:
        """Every message of a folder as (raw bytes, flags), in order; the \\Seen flag is left as it was."""
        with self._session() as conn:
            _ok(conn.select(_quote(folder), readonly=True), f"SELECT {folder}")
            found: list[tuple[bytes, str]] = []
            _, data = conn.uid("SEARCH", None, "ALL")
            for uid in (data[0] or b"").split():
                _, parts = conn.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
                head, raw = next((p[0], p[1]) for p in parts if isinstance(p, tuple))
                flags = re.search(rb"FLAGS \(([^)]*)\)", head)
                found.append((raw, flags.group(1).decode() if flags else ""))
            return found

    def folders(self) -> list[str]:
        """The names of the user's folders."""
        with self._session() as conn:
            _, data = conn.list()
            return [line.decode().rsplit(" ", 1)[-1].strip('"') for line in data if isinstance(line, bytes)]

    @contextlib.contextmanager
    def _session(self) -> Iterator[imaplib.IMAP4]:
        conn = self.connect()
        try:
            yield conn
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                conn.logout()


class Dovecot:
    """A Dovecot master process in a folder of its own, with plain and TLS listeners on loopback."""

    def __init__(self) -> None:
        if not Path(DOVECOT).exists() or not Path("/usr/lib/dovecot/imap").exists():
            raise RuntimeError(f"Dovecot is missing: {INSTALL_HINT}")
        # Short, world-traversable: the login processes (another user) connect to sockets in here.
        self.base = Path(tempfile.mkdtemp(prefix="nl-imap-"))
        self.base.chmod(0o755)
        self.port, self.tls_port = free_port(), free_port()
        self.cert, self.key = self_signed(self.base)
        self.password = f"imap-test-{secrets.token_hex(8)}"  # one for every user of this server
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Dovecot:
        """Write the config, start Dovecot in the foreground and wait until both ports answer."""
        mail = self.base / "mail"
        mail.mkdir()
        uid, gid, users = _accounts()
        os.chown(mail, uid, gid)
        config = self.base / "dovecot.conf"
        config.write_text(_CONFIG.format(base=self.base, cert=self.cert, key=self.key, port=self.port,
                                         tls_port=self.tls_port, uid=uid, gid=gid, password=self.password,
                                         **users))
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 15
        while not (_listening(self.port) and _listening(self.tls_port)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Dovecot did not start: {self.log() or self._stderr()}")
            time.sleep(0.05)
        return self

    def user(self) -> MailboxUser:
        """A new mailbox user with an empty INBOX (Dovecot makes the maildir at first login)."""
        name = f"writer{next(_users)}@haileyscomet.example.com"
        return MailboxUser("127.0.0.1", self.port, self.tls_port, name, self.password, self.cert)

    def log(self) -> str:
        path = self.base / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _stderr(self) -> str:
        if self.process is None or self.process.stderr is None or self.process.poll() is None:
            return ""
        return self.process.stderr.read().decode(errors="replace")

    def stop(self) -> None:
        """Stop Dovecot (and its children: it runs in a session of its own) and remove its folder."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)


def client_context(user: MailboxUser) -> ssl.SSLContext:
    """A TLS context that trusts the test server's certificate (and nothing else)."""
    return ssl.create_default_context(cafile=str(user.cert))


def _accounts() -> tuple[int, int, dict[str, str]]:
    """(mail uid, mail gid, Dovecot's service users): Dovecot refuses to run a mail or login process as root."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        group = _group_name(me.pw_gid)
        return me.pw_uid, me.pw_gid, {"internal_user": me.pw_name, "internal_group": group,
                                      "login_user": me.pw_name}
    try:
        internal, login = pwd.getpwnam("dovecot"), pwd.getpwnam("dovenull")
    except KeyError:
        raise RuntimeError(f"the users dovecot and dovenull are missing: {INSTALL_HINT}") from None
    return internal.pw_uid, internal.pw_gid, {"internal_user": "dovecot", "internal_group": _group_name(
        internal.pw_gid), "login_user": login.pw_name}


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ok(answer: tuple[str, list[object]], what: str) -> None:
    if answer[0] != "OK":
        raise RuntimeError(f"IMAP {what}: {answer}")


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One Dovecot for the session; fails (not skips) when it is not installed."""
    try:
        server = Dovecot().start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def imap_mailbox(dovecot: Dovecot) -> MailboxUser:
    """A fresh mailbox user on the session's Dovecot, with an empty INBOX and a `Processed` folder."""
    user = dovecot.user()
    user.create("Processed")
    return user


def main() -> None:
    """Serve until Ctrl-C, for trying the command by hand."""
    server = Dovecot().start()
    user = server.user()
    print(f"imap 127.0.0.1:{server.port}  imaps 127.0.0.1:{server.tls_port}  cert {server.cert}")
    print(f"user {user.username}  password {user.password}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
