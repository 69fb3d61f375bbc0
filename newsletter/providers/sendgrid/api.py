"""The SendGrid v3 calls the tool makes, through the official `sendgrid` library.

sendgrid-python quirks handled here: it has no default timeout (we set client.timeout); HTTP
errors arrive as python_http_client.exceptions.HTTPError with .status_code/.body/.headers;
network errors are not wrapped. urllib raises URLError when connecting or sending the request
fails (the request never reached SendGrid whole: safe to retry) but lets errors while waiting
for the answer through unwrapped (the request went out: SendGrid may have accepted it).
An error body may quote the key back: every answer is redacted before it is read.

The library's client sends `Connection: close`, so each request would pay a new TCP and TLS
handshake. /v3/mail/send therefore goes through one keep-alive http.client connection per window
slot, with the library's headers and its HTTPError, classified as every other answer is. The same
line is drawn: a failure while the request is written may be retried, one after it went out is
in doubt. A connection the server closed while idle is noticed before it is reused.
"""

from __future__ import annotations

import http.client
import json
import select
import ssl
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from newsletter.errors import ProviderError
from newsletter.providers.retry import InDoubt, RateLimited, Transient
from newsletter.providers.safety import is_loopback, redact

if TYPE_CHECKING:
    from newsletter.config import Settings

KEY_VARIABLE = "SENDGRID_API_KEY"


class BadRequest(Exception):
    """A 400 answer: SendGrid's errors as [{message, field, help}]."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(describe(e) for e in errors) or "400 Bad Request")


class TooLarge(Exception):
    """A 413 answer: the request body is too large."""


def describe(error: dict[str, Any]) -> str:
    """'field: message' for one SendGrid error object."""
    field, message = error.get("field"), str(error.get("message") or "refused")
    return f"{field}: {message}" if field and field != "null" else message


def _errors(body: bytes) -> list[dict[str, Any]]:
    try:
        errors = json.loads(body.decode("utf-8", "replace")).get("errors", [])
    except (ValueError, AttributeError):
        return []
    return [e for e in errors if isinstance(e, dict)]


def rate_limit_wait(headers: Any, now: float | None = None) -> float | None:
    """Seconds until X-RateLimit-Reset (unix seconds) or Retry-After; None when neither is given."""
    now = time.time() if now is None else now
    for name, relative in (("X-RateLimit-Reset", False), ("Retry-After", True)):
        value = headers.get(name) if headers is not None else None
        try:
            number = float(value) if value is not None else None
        except ValueError:
            continue
        if number is not None:
            return max(0.0, number if relative else number - now)
    return None


def check_host(settings: Settings) -> str:
    """[sendgrid] host without its trailing slash; https unless it is this machine (tests)."""
    host = settings.sendgrid.host.rstrip("/")
    url = urlsplit(host)
    local = url.scheme == "http" and is_loopback(url.hostname or "")
    if not url.netloc or (url.scheme != "https" and not local) or url.path not in ("", "/"):
        raise ProviderError(f"{settings.config_path}: [sendgrid] host: must be an https:// URL with no path, "
                            f"like https://api.sendgrid.com, got {settings.sendgrid.host!r}")
    return host


class SendGridAPI:
    """The few v3 calls the tool makes, each with a timeout, each error classified."""

    def __init__(self, api_key: str, host: str, timeout: float) -> None:
        from sendgrid import SendGridAPIClient

        self.host = host
        self._secrets = (api_key,)
        self._sg = SendGridAPIClient(api_key=api_key, host=host)
        self._sg.client.timeout = timeout
        self.timeout = timeout
        self._connections: dict[int, http.client.HTTPConnection] = {}  # one per window slot, kept alive
        self._headers = {**self._sg.client.request_headers, "Content-Type": "application/json"}

    @classmethod
    def from_settings(cls, settings: Settings, api_key: str) -> SendGridAPI:
        """Build from [sendgrid] host (checked) and timeout; the key comes from the caller."""
        return cls(api_key, check_host(settings), settings.sendgrid.timeout)

    def send_mail(self, body: dict[str, Any] | str, *, slot: int = 0) -> str:
        """POST /v3/mail/send (a body, or one already serialized) on this slot's kept-alive connection.

        Return SendGrid's X-Message-Id. Only one call at a time may use a slot.
        """
        from python_http_client.exceptions import HTTPError

        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        path = "/v3/mail/send"
        connection = self._connection(slot)
        try:
            connection.request("POST", path, data, self._headers)
        except (OSError, http.client.HTTPException) as exc:  # it never went out whole: safe to retry
            connection.close()
            raise Transient(f"cannot reach {self.host}: {redact(str(exc), self._secrets) or type(exc).__name__}") \
                from None
        try:
            response = connection.getresponse()
            raw = response.read()  # all of it, or the connection cannot carry the next request
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            reason = redact(str(exc), self._secrets) or type(exc).__name__
            raise InDoubt(f"no answer from {self.host} after the request went out ({reason})") from None
        if not 200 <= response.status < 300:
            raise self._classify(HTTPError(response.status, response.reason, raw, response.headers), path)
        return str(response.headers.get("X-Message-Id") or "")

    def _connection(self, slot: int) -> http.client.HTTPConnection:
        """This slot's connection; one the server closed while it sat idle is reopened before use."""
        connection = self._connections.get(slot)
        if connection is None:
            url = urlsplit(self.host)
            if url.scheme == "https":
                connection = http.client.HTTPSConnection(url.netloc, timeout=self.timeout,
                                                         context=ssl.create_default_context())
            else:  # this machine only (check_host)
                connection = http.client.HTTPConnection(url.netloc, timeout=self.timeout)
            self._connections[slot] = connection
        elif connection.sock is not None and select.select([connection.sock], [], [], 0)[0]:
            connection.close()  # readable while idle: closed by the server (or junk): never write into it
        return connection

    def close(self) -> None:
        """Close the kept-alive connections."""
        for connection in list(self._connections.values()):
            connection.close()
        self._connections.clear()

    def create_batch(self) -> str:
        """POST /v3/mail/batch: a batch id under which a scheduled send can be cancelled."""
        response = self._call(lambda: self._sg.client.mail.batch.post(), "/v3/mail/batch", idempotent=True)
        return str(json.loads(response.body)["batch_id"])

    def cancel_batch(self, batch_id: str) -> None:
        """POST /v3/user/scheduled_sends with status cancel."""
        self._call(lambda: self._sg.client.user.scheduled_sends.post(
            request_body={"batch_id": batch_id, "status": "cancel"}), "/v3/user/scheduled_sends", idempotent=True)

    def get_json(self, path: Sequence[str], query: dict[str, Any] | None = None) -> Any:
        """GET /v3/<path...> and decode the JSON answer (the suppression lists)."""
        client = self._sg.client
        for segment in path:
            client = client._(segment)
        response = self._call(lambda: client.get(query_params=query), "/v3/" + "/".join(path), idempotent=True)
        return json.loads(response.body or b"[]")

    def _call(self, fn: Callable[[], Any], what: str, *, idempotent: bool = False) -> Any:
        from urllib.error import URLError

        from python_http_client.exceptions import HTTPError

        try:
            return fn()
        except HTTPError as exc:
            raise self._classify(exc, what) from None
        except URLError as exc:
            raise Transient(f"cannot reach {self.host}: {redact(str(exc.reason), self._secrets)}") from None
        except (OSError, http.client.HTTPException) as exc:
            reason = redact(str(exc), self._secrets) or type(exc).__name__
            if idempotent:
                raise Transient(f"no answer from {self.host}: {reason}") from None
            raise InDoubt(f"no answer from {self.host} after the request went out ({reason})") from None

    def _classify(self, exc: Any, what: str) -> Exception:
        code, headers = int(exc.status_code), exc.headers
        raw = exc.body or b""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        body = redact(text, self._secrets).encode("utf-8")
        errors = _errors(body)
        reason = redact(str(getattr(exc, "reason", "")), self._secrets)
        detail = "; ".join(describe(e) for e in errors) or reason or "no details"
        if code == 400:
            return BadRequest(errors)
        if code in (401, 403):
            return ProviderError(f"SendGrid refused the API key in {KEY_VARIABLE} ({code}: {detail})",
                                 hint=f"check {KEY_VARIABLE}: a valid key with the Mail Send permission")
        if code == 413:
            return TooLarge(detail)
        if code == 429:
            return RateLimited(f"SendGrid rate limit (429: {detail})", rate_limit_wait(headers))
        if code >= 500:
            return Transient(f"SendGrid answered {code} ({detail})")
        return ProviderError(f"SendGrid answered {code} for {what} ({detail})",
                             hint=f"is [sendgrid] host right? it is {self.host}")
