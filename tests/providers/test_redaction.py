"""Issue 9, item 5: an API key that SendGrid (or anything in its place) echoes back in an error body
never reaches an error message, the report or the ledger."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from newsletter.errors import ProviderError
from newsletter.providers import Transient
from newsletter.providers.sendgrid.api import BadRequest, SendGridAPI

KEY = "SG.Echoed-Key_0123456789.abcdefghijklmnopqrstuvwxyz"


def echoing_server(status: int) -> ThreadingHTTPServer:
    """Answers every request with `status` and a SendGrid-style error body quoting the Authorization header."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass

        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            said = self.headers.get("Authorization", "")
            body = json.dumps({"errors": [{"field": "authorization", "message": f"'{said}' is not allowed here",
                                           "help": None}]}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(params=[401, 400, 500, 418])
def answer(request: pytest.FixtureRequest) -> Iterator[tuple[int, str]]:
    server = echoing_server(request.param)
    try:
        yield request.param, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_echoed_key_is_redacted_from_every_error(answer: tuple[int, str]) -> None:
    status, host = answer
    api = SendGridAPI(KEY, host, timeout=5)
    expected = {401: ProviderError, 400: BadRequest, 500: Transient, 418: ProviderError}[status]
    with pytest.raises(expected) as info:
        api.send_mail({"personalizations": []})
    text = str(info.value)
    assert "[redacted]" in text and KEY not in text
    if isinstance(info.value, BadRequest):
        assert KEY not in json.dumps(info.value.errors)
