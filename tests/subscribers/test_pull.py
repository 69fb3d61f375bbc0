"""`newsletter subscribers pull`: a remote service's events, fetched from a cursor, each once, then applied.

The service here is a small HTTP server on 127.0.0.1 that answers GET <base>events?after=N&limit=M
as the reader service does (its journal is a real Inbox, so the cursors are real byte offsets).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.subscribers.inbox import EventType, Inbox
from newsletter.subscribers.pull import PullError, pull_events
from newsletter.subscribers.schema import email_key
from newsletter.subscribers.store import load_subscribers
from newsletter.tokens import Tokens
from tests.helpers import one_error_line

TOKEN = "pull-test-token-never-shown-42"  # noqa: S105 - a test secret
SECRET = "pull-test-unsubscribe-secret"  # noqa: S105 - a test secret


class FakeService:
    """The events endpoint of a reader service, over a real journal; records what it was asked."""

    def __init__(self, folder: Path) -> None:
        self.inbox = Inbox(folder)
        self.requests: list[tuple[str, str]] = []  # (path?query, Authorization)
        self.answer: tuple[int, bytes] | None = None  # a forced answer
        self.redirect = ""
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                service.requests.append((self.path, self.headers.get("Authorization", "")))
                status, body = service.respond(self.path, self.headers.get("Authorization", ""))
                self.send_response(status)
                if service.redirect:
                    self.send_header("Location", service.redirect)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/r/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def respond(self, path: str, auth: str) -> tuple[int, bytes]:
        if self.redirect:
            return 302, b""
        if self.answer is not None:
            return self.answer
        if auth != f"Bearer {TOKEN}":
            return 401, b'{"error": "unauthorized"}'
        url = urlsplit(path)
        if url.path != "/r/events":
            return 404, b""
        query = parse_qs(url.query)
        events, cursor = self.inbox.read(int(query["after"][0]), int(query["limit"][0]))
        return 200, json.dumps({"events": [e.record() for e in events], "cursor": cursor}).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.inbox.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[FakeService]:
    fake = FakeService(tmp_path / "remote-inbox")
    yield fake
    fake.close()


@pytest.fixture
def letter(newsletter_dir: Path, service: FakeService, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEWSLETTER_READERS__URL", service.url)
    monkeypatch.setenv("NEWSLETTER_READERS__REMOTE", "true")
    monkeypatch.setenv("NEWSLETTER_READERS_TOKEN", TOKEN)
    monkeypatch.setenv("NEWSLETTER_UNSUBSCRIBE_SECRET", SECRET)
    return newsletter_dir


def reader(address: str) -> str:
    tokens = Tokens((SECRET,))
    rid = tokens.open_unsubscribe(tokens.unsubscribe_token(email_key(address)))
    assert rid is not None
    return rid


def status(folder: Path, address: str) -> str:
    return next(s.status for s in load_subscribers(folder / "subscribers.csv").rows if s.email == address)


def test_pull_fetches_every_page_then_applies(letter: Path, service: FakeService) -> None:
    for n in range(5):
        service.inbox.record(EventType.CONFIRMED, "web", email=f"new{n}@example.com")
    service.inbox.record(EventType.UNSUBSCRIBED, "web", reader=reader("ada.lovelace@example.com"))
    report = pull_events(service.url, letter / "inbox", TOKEN, page=2)
    assert (report.fetched, report.added, report.requests) == (6, 6, 4)  # three full pages, then none
    assert all(auth == f"Bearer {TOKEN}" for _, auth in service.requests)
    result = CliRunner().invoke(app, ["subscribers", "pull"])
    assert result.exit_code == 0, result.output
    assert "Pulled 0 events" in result.output and "5 added" in result.output
    assert status(letter, "ada.lovelace@example.com") == "unsubscribed"
    assert status(letter, "new4@example.com") == "active"


def test_nothing_is_fetched_or_applied_twice(letter: Path, service: FakeService) -> None:
    service.inbox.record(EventType.CONFIRMED, "web", email="nadia@example.com")
    first = CliRunner().invoke(app, ["subscribers", "pull"])
    assert "Pulled 1 event from" in first.output and "1 added" in first.output
    second = CliRunner().invoke(app, ["subscribers", "pull"])
    assert "Pulled 0 events" in second.output and "Inbox: no new events." in second.output
    assert service.requests[-1][0].startswith("/r/events?after=") and "after=0" not in service.requests[-1][0]
    service.inbox.record(EventType.UNSUBSCRIBED, "web", email="nadia@example.com")
    third = CliRunner().invoke(app, ["subscribers", "pull"])
    assert "Pulled 1 event from" in third.output and "unsubscribed nadia@example.com (was active)" in third.output
    assert len(Inbox(letter / "inbox").read()[0]) == 2


def test_a_lost_pull_cursor_fetches_again_but_adds_nothing_twice(letter: Path, service: FakeService) -> None:
    service.inbox.record(EventType.CONFIRMED, "web", email="nadia@example.com")
    pull_events(service.url, letter / "inbox", TOKEN)
    (letter / "inbox" / "pulled.json").unlink()
    again = pull_events(service.url, letter / "inbox", TOKEN)
    assert (again.fetched, again.added) == (1, 0)
    assert len(Inbox(letter / "inbox").read()[0]) == 1


@pytest.mark.parametrize(("answer", "message"), [
    ((401, b'{"error": "unauthorized"}'), "refused the token (401)"),
    ((500, b"oops"), "answered 500"),
    ((200, b"<html>not json</html>"), "not the reader service's events"),
    ((200, b'{"events": "nope", "cursor": 1}'), "not the reader service's events"),
    ((200, b'{"events": [{"id": "x"}], "cursor": 9}'), "not an inbox event"),
])
def test_errors_are_one_line_and_nothing_is_applied(letter: Path, service: FakeService,
                                                    answer: tuple[int, bytes], message: str) -> None:
    service.answer = answer
    before = (letter / "subscribers.csv").read_bytes()
    result = CliRunner().invoke(app, ["subscribers", "pull"])
    assert message in one_error_line(result)
    assert TOKEN not in result.output
    assert (letter / "subscribers.csv").read_bytes() == before
    assert not (letter / "inbox" / "pulled.json").exists()


def test_a_wrong_token_is_refused(letter: Path, service: FakeService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_READERS_TOKEN", "wrong-token")
    result = CliRunner().invoke(app, ["subscribers", "pull"])
    assert "refused the token (401)" in one_error_line(result) and "wrong-token" not in result.output
    monkeypatch.delenv("NEWSLETTER_READERS_TOKEN")
    assert "no token" in one_error_line(CliRunner().invoke(app, ["subscribers", "pull"]))


def test_an_unreachable_service_is_one_line(letter: Path, service: FakeService) -> None:
    url = service.url
    service.close()
    with pytest.raises(PullError, match="cannot reach the reader service"):
        pull_events(url, letter / "inbox", TOKEN, timeout=5)


def test_a_redirect_is_not_followed_with_the_token(letter: Path, service: FakeService) -> None:
    service.redirect = "http://127.0.0.1:9/elsewhere"
    with pytest.raises(PullError, match="redirected"):
        pull_events(service.url, letter / "inbox", TOKEN)
    assert len(service.requests) == 1


def test_plain_http_is_refused_beyond_this_machine(letter: Path) -> None:
    with pytest.raises(PullError, match="must be an https:// URL"):
        pull_events("http://example.com/r/", letter / "inbox", TOKEN)


def test_pull_without_a_service_url_says_so(letter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_READERS__REMOTE", "false")
    monkeypatch.setenv("NEWSLETTER_READERS__URL", "")
    assert "[readers] url is not set" in one_error_line(CliRunner().invoke(app, ["subscribers", "pull"]))
