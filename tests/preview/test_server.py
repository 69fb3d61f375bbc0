"""The preview server without a browser: routes, safety, live-reload stream, errors, the CLI."""

from __future__ import annotations

import email
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsletter.cli import app
from newsletter.errors import NewsletterError
from newsletter.preview import server as preview_module
from newsletter.preview.live import Watcher
from newsletter.preview.pages import Response
from newsletter.preview.server import DEFAULT_PORT, PreviewServer, Router, clean_path, host_allowed, is_loopback
from newsletter.render.compose import PACKAGE_TEMPLATES
from tests.helpers import copy_newsletter

SLUG = "the-fear-of-entering-the-room"
ISSUE_FILE = f"issues/2026-11-23-{SLUG}.md"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(newsletter_dir: Path) -> Iterator[PreviewServer]:
    logs: list[str] = []
    with PreviewServer(newsletter_dir / "newsletter.toml", port=0, log=logs.append).start() as srv:
        srv.logs = logs  # type: ignore[attr-defined]
        yield srv


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PreviewServer]:
    """One server for the read-only tests: a copy of the repository's newsletter, never edited."""
    folder = copy_newsletter(ROOT, tmp_path_factory.mktemp("shared") / "letter", subscribers=False)
    with PreviewServer(folder / "newsletter.toml", port=0).start() as srv:
        yield srv


def get(srv: PreviewServer, target: str, host: str = "127.0.0.1",
        method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Send one raw request (the target exactly as given, never normalised) and read the answer."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


class Events:
    """Read the server-sent events stream in a thread; versions arrive on a queue."""

    def __init__(self, srv: PreviewServer | int) -> None:
        port = srv if isinstance(srv, int) else srv.port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(b"GET /_preview/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.versions: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        try:
            while chunk := self.sock.recv(4096):
                buffer += chunk
                for match in re.finditer(rb"event: version\ndata: (\S+)\n\n", buffer):
                    self.versions.put(match.group(1).decode())
                buffer = buffer[buffer.rfind(b"\n\n") + 2:] if b"\n\n" in buffer else buffer
        except OSError:
            pass
        self.versions.put(None)

    def next(self, timeout: float = 3.0) -> str | None:
        return self.versions.get(timeout=timeout)

    def ended(self, timeout: float = 3.0) -> bool:
        """True once the server ends the stream (versions still queued before that are skipped)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                if self.versions.get(timeout=left) is None:
                    return True
            except queue.Empty:
                return False
        return False

    def close(self) -> None:
        self.sock.close()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# -- paths and hosts -------------------------------------------------------------------------

TRAVERSALS = [
    "/../newsletter.toml", "/..%2fnewsletter.toml", "/%2e%2e/newsletter.toml", "/%2E%2E/%2E%2E/etc/passwd",
    "/issue/../../newsletter.toml", f"/issue/{SLUG}/../../newsletter.toml", f"/issue/{SLUG}/..%2F..%2Fnewsletter.toml",
    f"/issue/{SLUG}/%2e%2e%2f%2e%2e%2fnewsletter.toml", "/issue/..%2F..%2Fnewsletter.toml/email.html",
    "/issue/%2e%2e/email.html", f"/issue/{SLUG}/..%5c..%5cnewsletter.toml", "/%252e%252e/newsletter.toml",
    "//etc/passwd", "/etc/passwd", "/newsletter.toml", f"/{ISSUE_FILE}", "/issue//etc/passwd",
    "/issue/%2Fetc%2Fpasswd/email.html", "/_preview/../newsletter.toml", "/_preview/%2e%2e%2fnewsletter.toml",
    "/_preview/email.html", "/_preview/preview_base.html", f"/issue/{SLUG}/newsletter.toml", "/issue/%00/",
    "http://127.0.0.1/etc/passwd", "C:\\Windows\\win.ini", "/..\\..\\newsletter.toml", "/./newsletter.toml",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_attempts_get_404(shared_server: PreviewServer, target: str) -> None:
    status, _, body = get(shared_server, target)
    assert status == 404
    assert b"postal_address" not in body and b"root:x:" not in body and b"subscribed" not in body


@pytest.mark.parametrize("target", ["/issues/", "/templates/", "/issue/", "/_preview/", "/build/", "/issues"])
def test_no_directory_listings(shared_server: PreviewServer, target: str) -> None:
    status, _, body = get(shared_server, target)
    assert status == 404
    assert b"2026-11-23" not in body and b"email.css" not in body


@given(st.lists(st.sampled_from(["..", "%2e%2e", "%2E%2e", ".%2e", "%2e.", "a", "issue", "%2f", "%5c", ""]),
                min_size=1, max_size=6))
def test_clean_path_never_lets_a_dot_dot_through(segments: list[str]) -> None:
    path = clean_path("/" + "/".join(segments))
    if path is not None:
        assert ".." not in path.split("/") and "\\" not in path and "//" not in path


def test_clean_path_decodes_once_and_keeps_good_paths() -> None:
    assert clean_path(f"/issue/{SLUG}/email.html?v=1#top") == f"/issue/{SLUG}/email.html"
    assert clean_path("/") == "/"
    assert clean_path("/caf%C3%A9/") == "/café/"
    assert clean_path("/%ff/") is None  # not UTF-8


@pytest.mark.parametrize(("header", "ok"), [
    ("127.0.0.1:8471", True), ("localhost:8471", True), ("[::1]:8471", True), ("LOCALHOST", True),
    ("app.localhost:1", True), (None, True), ("evil.example:8471", False), ("127.0.0.1.evil.example", False),
    ("192.168.1.5:8471", False),
])
def test_host_header_check_on_loopback(header: str | None, ok: bool) -> None:
    assert host_allowed(header, loopback=True) is ok
    assert host_allowed(header, loopback=False) is True


def test_a_page_behind_dns_rebinding_is_refused(shared_server: PreviewServer) -> None:
    status, _, body = get(shared_server, "/", host="attacker.example")
    assert status == 403 and b"Hailey" not in body


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_router_prefix_handlers_are_one_mount_away() -> None:
    router = Router()
    router.add("/", lambda: Response(200, b"index"))
    router.mount("/archive/", lambda rest: Response(200, f"archive:{rest}".encode()))
    router.mount("/archive/feed/", lambda rest: Response(200, f"feed:{rest}".encode()))
    assert router.dispatch("/").body == b"index"  # type: ignore[union-attr]
    assert router.dispatch("/archive/2026/").body == b"archive:2026/"  # type: ignore[union-attr]
    assert router.dispatch("/archive/feed/atom.xml").body == b"feed:atom.xml"  # type: ignore[union-attr]
    assert router.dispatch("/elsewhere") is None


# -- what is served ----------------------------------------------------------------------------

def test_frames_serve_exactly_what_build_writes(server: PreviewServer, newsletter_dir: Path, runner) -> None:
    # The server fixture has no unsubscribe secret: nor has this build.
    result = runner.invoke(app, ["build", SLUG, "--out", str(newsletter_dir / "out")],
                           env={"NEWSLETTER_UNSUBSCRIBE_SECRET": ""})
    assert result.exit_code == 0, result.output
    built = newsletter_dir / "out" / SLUG
    for name in ("email.html", "email.txt"):
        status, headers, body = get(server, f"/issue/{SLUG}/{name}?v=anything")
        assert status == 200 and body == (built / name).read_bytes()
        assert headers["cache-control"] == "no-store"
    status, headers, body = get(server, f"/issue/{SLUG}/message.eml")
    sent, served = email.message_from_bytes((built / "message.eml").read_bytes()), email.message_from_bytes(body)
    for header in ("From", "To", "Subject", "List-Unsubscribe", "List-Id"):
        assert served[header] == sent[header]
    assert [p.get_payload() for p in served.walk()][1:] == [p.get_payload() for p in sent.walk()][1:]
    assert headers["content-type"] == "message/rfc822" and "attachment" in headers["content-disposition"]
    assert "script-src 'none'" in get(server, f"/issue/{SLUG}/email.html")[1]["content-security-policy"]


def test_issue_page_shows_inbox_row_frames_text_checks_and_links(server: PreviewServer) -> None:
    status, headers, body = get(server, f"/issue/{SLUG}/")
    page = body.decode()
    assert status == 200 and headers["cache-control"] == "no-store"
    assert "Hailey Tai" in page and "The Fear of Entering the Room" in page
    assert "On Tarkovsky’s Stalker and the courage to face our own desire." in page
    assert page.count("<iframe") == 2 and 'id="frame-phone"' in page and 'sandbox="allow-same-origin' in page
    assert "Plain text" in page and "<meter" in page and "of Gmail’s 102 KB clip" in page
    for name in ("email.html", "email.txt", "message.eml"):
        assert f'href="{name}"' in page
    text = get(server, f"/issue/{SLUG}/email.txt")[2].decode()
    assert "<pre class=\"plain\" id=\"part-text\" data-part=\"text\">\n" + text.replace("’", "’")[:40] in page


def test_index_lists_issues_newest_first_with_status_size_and_checks(server: PreviewServer,
                                                                      newsletter_dir: Path) -> None:
    (newsletter_dir / "issues" / "2026-12-01-second-light.md").write_text(
        "---\ntitle: Second Light\nsubtitle: A short one.\nstatus: draft\n---\n\nA few words.\n", encoding="utf-8")
    (newsletter_dir / "issues" / "2026-12-05-broken.md").write_text("---\ntitle: [unclosed\n---\nx\n")
    status, _, body = get(server, "/")
    page = body.decode()
    assert status == 200
    broken, second, first = (page.index(s) for s in ("2026-12-05-broken.md", "Second Light", "The Fear of"))
    assert broken < second < first
    assert "status-draft" in page and "status-ready" in page and " KB" in page
    assert "warning" in page and "all checks pass" in page
    assert re.search(r"2026-12-05-broken\.md:\d+: front matter is not valid YAML", page)


def test_head_post_and_unknown_paths(server: PreviewServer) -> None:
    status, headers, body = get(server, f"/issue/{SLUG}/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 1000
    assert get(server, "/", method="POST")[0] == 405
    status, headers, _ = get(server, f"/issue/{SLUG}")
    assert status == 301 and headers["location"] == f"/issue/{SLUG}/"
    assert get(server, "/issue/no-such-issue/")[0] == 404
    assert get(server, "/_preview/preview.js")[1]["content-type"].startswith("text/javascript")


def test_every_answer_is_no_store(shared_server: PreviewServer) -> None:
    for target in ("/", f"/issue/{SLUG}/", f"/issue/{SLUG}/email.txt", "/_preview/preview.css", "/missing"):
        assert get(shared_server, target)[1]["cache-control"] == "no-store"


# -- errors on the page, the server keeps going ------------------------------------------------

def test_broken_front_matter_is_shown_with_file_and_line_then_recovers(server: PreviewServer,
                                                                       newsletter_dir: Path) -> None:
    issue = newsletter_dir / ISSUE_FILE
    good = issue.read_text(encoding="utf-8")
    issue.write_text(good.replace("status: ready", "status: [ready"), encoding="utf-8")
    status, _, body = get(server, f"/issue/{SLUG}/")
    assert status == 500
    assert re.search(rf"{re.escape(ISSUE_FILE.split('/')[1])}:\d+: front matter is not valid YAML", body.decode())
    assert get(server, f"/issue/{SLUG}/email.html")[0] == 500
    assert any("front matter is not valid YAML" in line for line in server.logs)  # type: ignore[attr-defined]
    issue.write_text(good, encoding="utf-8")
    status, _, body = get(server, f"/issue/{SLUG}/")
    assert status == 200 and b"<iframe" in body


def test_template_error_is_shown_with_file_and_line(server: PreviewServer, newsletter_dir: Path) -> None:
    own = newsletter_dir / "templates"
    own.mkdir(exist_ok=True)
    source = (PACKAGE_TEMPLATES / "email.html").read_text(encoding="utf-8")
    (own / "email.html").write_text(source.replace("{{ title }}</h1>", "{{ title }</h1>", 1), encoding="utf-8")
    body = get(server, f"/issue/{SLUG}/")[2].decode()
    assert re.search(r"email\.html:\d+: template error", body)
    (own / "email.html").unlink()
    assert get(server, f"/issue/{SLUG}/")[0] == 200


def test_broken_config_while_running_is_shown_and_recovers(server: PreviewServer, newsletter_dir: Path) -> None:
    config = newsletter_dir / "newsletter.toml"
    good = config.read_text(encoding="utf-8")
    config.write_text(good.replace('provider = "outbox"', 'provider = "pigeon"'), encoding="utf-8")
    for target in ("/", f"/issue/{SLUG}/"):
        assert b"[delivery] provider: must be one of" in get(server, target)[2]
    config.write_text(good.replace("Hailey’s Comet", "Hailey’s Other Comet", 1), encoding="utf-8")
    assert "Hailey’s Other Comet" in get(server, f"/issue/{SLUG}/email.html")[2].decode()


def test_a_bug_in_a_render_gives_a_500_and_the_server_keeps_serving(server: PreviewServer, monkeypatch) -> None:
    def boom(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(server.site, "index", boom)
    server.router = preview_module.build_router(server.site, server.changes)
    status, _, body = get(server, "/")
    assert status == 500 and b"internal error" in body and b"a bug" not in body
    assert any("RuntimeError: a bug" in line for line in server.logs)  # type: ignore[attr-defined]
    assert get(server, f"/issue/{SLUG}/")[0] == 200


def test_a_save_is_never_served_stale_even_before_the_watcher_sees_it(server: PreviewServer,
                                                                      newsletter_dir: Path) -> None:
    assert b"Imagine a place" in get(server, f"/issue/{SLUG}/email.html")[2]
    edit(newsletter_dir / ISSUE_FILE, "Imagine a place", "Picture a place")
    assert b"Picture a place" in get(server, f"/issue/{SLUG}/email.html")[2]


# -- live reload --------------------------------------------------------------------------------

def test_events_announce_each_save_of_issue_template_and_config(server: PreviewServer, newsletter_dir: Path) -> None:
    events = Events(server)
    try:
        first = events.next()
        assert first == server.changes.version
        edit(newsletter_dir / ISSUE_FILE, "Imagine a place", "Picture a place")
        second = events.next(timeout=2)
        assert second not in (None, first)
        own = newsletter_dir / "templates"
        own.mkdir(exist_ok=True)
        shutil.copy(PACKAGE_TEMPLATES / "email.css", own / "email.css")
        third = events.next(timeout=2)
        assert third not in (None, second)
        edit(newsletter_dir / "newsletter.toml", 'language = "en"', 'language = "en-GB"')
        assert events.next(timeout=2) not in (None, third)
        assert any("changed: issues/" in line for line in server.logs)  # type: ignore[attr-defined]
    finally:
        events.close()


def test_files_the_email_does_not_read_do_not_trigger_a_reload(server: PreviewServer, newsletter_dir: Path) -> None:
    events = Events(server)
    try:
        events.next()
        (newsletter_dir / "subscribers.csv").write_text("email\nx@example.com\n")
        (newsletter_dir / "build").mkdir()
        (newsletter_dir / "build" / "email.html").write_text("x")
        (newsletter_dir / "issues" / ".2026-notes.md.swp").write_text("x")
        with pytest.raises(queue.Empty):
            events.next(timeout=0.8)
    finally:
        events.close()


def test_watcher_reports_changed_paths() -> None:
    states = iter([(("a", 1, 1, 1),), (("a", 1, 1, 1),), (("a", 2, 1, 1), ("b", 1, 1, 1)), (("b", 1, 1, 1),)])
    # the first state is the baseline, taken when the watcher is made
    seen: list[list[str]] = []
    done = threading.Event()

    def snapshot() -> tuple[tuple[str, int, int, int], ...]:
        try:
            return next(states)
        except StopIteration:
            done.set()
            return (("b", 1, 1, 1),)

    watcher = Watcher(snapshot, seen.append, interval=0.01)
    watcher.start()
    assert done.wait(2)
    watcher.stop()
    assert seen == [["a", "b"], ["a"]]


def test_close_ends_open_streams_and_frees_the_port(newsletter_dir: Path) -> None:
    srv = PreviewServer(newsletter_dir / "newsletter.toml", port=0).start()
    events = Events(srv)
    assert events.next() is not None
    started = time.monotonic()
    srv.close()
    assert events.ended()
    assert time.monotonic() - started < 2
    with PreviewServer(newsletter_dir / "newsletter.toml", port=srv.port) as again:
        assert again.port == srv.port


# -- ports, hosts, the command -------------------------------------------------------------------

def test_default_port_taken_moves_to_a_free_one(newsletter_dir: Path, monkeypatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        monkeypatch.setattr(preview_module, "DEFAULT_PORT", busy)
        with PreviewServer(newsletter_dir / "newsletter.toml") as srv:
            assert srv.port != busy and f"port {busy} is taken" in srv.notes[0]
        with pytest.raises(NewsletterError, match=rf"127.0.0.1:{busy}: cannot listen here"):
            PreviewServer(newsletter_dir / "newsletter.toml", port=busy)


def test_non_loopback_host_gets_a_warning(newsletter_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(preview_module, "is_loopback", lambda host: False)
    with PreviewServer(newsletter_dir / "newsletter.toml", port=0) as srv:
        assert any("is not a loopback address" in note for note in srv.notes)
        assert not srv.loopback


def test_preview_never_imports_a_provider_or_send(newsletter_dir: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from newsletter.preview.server import PreviewServer\n"
        "import newsletter.cli.preview\n"
        "s = PreviewServer(Path('newsletter.toml'), port=0)\n"
        f"for t in ('/', '/issue/{SLUG}/', '/issue/{SLUG}/email.html', '/issue/{SLUG}/message.eml'):\n"
        "    s.respond(t)\n"
        "s.close()\n"
        "bad = ('newsletter.providers', 'newsletter.send', 'sendgrid', 'smtplib')\n"
        "print('BAD', [m for m in sys.modules if m.startswith(bad)])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=newsletter_dir, capture_output=True, text=True, check=True)
    assert "BAD []" in out.stdout
    for module in ("preview/server.py", "preview/pages.py", "preview/live.py", "cli/preview.py"):
        source = (ROOT / "newsletter" / module).read_text()
        assert not re.search(r"^\s*(from|import) newsletter\.(providers|send)\b", source, re.M)


def test_help_has_an_example_and_the_real_default_port(runner) -> None:
    result = runner.invoke(app, ["preview", "--help"])
    assert result.exit_code == 0
    assert "Example: newsletter preview" in result.output and f"default {DEFAULT_PORT}" in result.output


def test_unknown_issue_is_one_line_and_exit_1(newsletter_dir: Path, runner) -> None:
    result = runner.invoke(app, ["preview", "no-such-issue", "--no-open", "--port", "0"])
    assert result.exit_code == 1
    assert "no issue with slug or path 'no-such-issue'" in result.output and "Traceback" not in result.output


def test_broken_config_at_start_is_one_line_and_exit_1(newsletter_dir: Path, runner) -> None:
    (newsletter_dir / "newsletter.toml").write_text("[newsletter\n")
    result = runner.invoke(app, ["preview", "--no-open", "--port", "0"])
    assert result.exit_code == 1 and "not valid TOML" in result.output


def test_the_command_serves_logs_changes_and_stops_cleanly_on_ctrl_c(newsletter_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "preview", SLUG, "--no-open", "--port", "0"],
        cwd=newsletter_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"at http://127\.0\.0\.1:(\d+)(/issue/\S+/)", line)
        assert match, line
        port, path = int(match.group(1)), match.group(2)
        assert path == f"/issue/{SLUG}/"
        events = Events(port)  # an open stream must not keep Ctrl-C from stopping the server
        seen = events.next()
        for old, new in (("Imagine a place", "Picture a place"), ("status: ready", "stauts: ready"),
                         ("stauts: ready", "status: ready")):
            edit(newsletter_dir / ISSUE_FILE, old, new)
            now = events.next(timeout=5)
            assert now not in (None, seen)
            seen = now
            time.sleep(0.5)  # the warmer renders right after the announcement: no page needs to ask
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=5)
        assert events.ended()  # the server closed the stream
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Stopped." in out and "Traceback" not in err
    assert f"changed: {ISSUE_FILE}" in err
    assert f"error: {ISSUE_FILE}:7: unknown front matter key 'stauts'" in err
    assert f"fixed: {ISSUE_FILE} renders again" in err


def test_sigterm_stops_the_command_as_cleanly_as_ctrl_c(newsletter_dir: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "newsletter", "preview", "--no-open", "--port", "0"],
                            cwd=newsletter_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and "Previewing" in proc.stdout.readline()
        proc.terminate()
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "Stopped." in out and "Traceback" not in err


def test_the_web_archive_is_served_under_archive(server: PreviewServer, newsletter_dir: Path) -> None:
    from newsletter.archive.site import render_site
    from newsletter.config import load_settings

    expected = render_site(load_settings(newsletter_dir / "newsletter.toml", environ={}), include_drafts=True)
    status, headers, body = get(server, "/archive/")
    assert status == 200 and body == expected["index.html"] and headers["content-type"].startswith("text/html")
    status, _, body = get(server, f"/archive/{SLUG}/")
    assert status == 200 and body == expected[f"{SLUG}/index.html"]
    status, headers, body = get(server, "/archive/feed.xml")
    assert status == 200 and body == expected["feed.xml"] and "xml" in headers["content-type"]
    assert get(server, "/archive")[1]["location"] == "/archive/"
    assert get(server, "/archive/no-such-page/")[0] == 404
    assert get(server, "/archive/../newsletter.toml")[0] == 404
    edit(newsletter_dir / ISSUE_FILE, "title: The Fear of Entering the Room", "title: The Room, Revisited")
    assert b"The Room, Revisited" in get(server, f"/archive/{SLUG}/")[2]  # never a stale render
