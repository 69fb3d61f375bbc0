"""Copy a remote reader service's events into the local inbox: `newsletter subscribers pull`.

When the service runs on another machine than the list (a small server beside a laptop that
keeps the CSV in git), its inbox is over there. `pull` asks it for the events after the last
remote cursor (GET <url>events?after=N&limit=M, with the bearer token from the variable
[readers] token_env names), page by page until it has them all, appends those the local inbox
lacks (by event id, one fsync a page) and only then saves the remote cursor (inbox/pulled.json).
A crash between the two fetches a page again, and the ids keep it from being added twice.

Only https, or http to this machine; redirects are refused (they would carry the token
elsewhere). Nothing here prints or applies: the CLI applies the inbox afterwards.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from newsletter.errors import SubscriberError
from newsletter.files import atomic_write_text
from newsletter.subscribers.inbox import Event, Inbox, parse_event
from newsletter.subscribers.schema import shown

STATE = "pulled.json"
PAGE = 1000  # events asked for per request
MAX_BODY = 64 * 1024 * 1024  # a page of events is far smaller; a longer answer is not the service's
TIMEOUT = 30.0


class PullError(SubscriberError):
    """The reader service cannot be reached, refused the token, or answered something that is not events."""


@dataclass
class PullReport:
    """What a pull fetched from the service and added to the local inbox."""

    url: str
    fetched: int = 0  # events the service sent
    added: int = 0  # of which new here
    requests: int = 0
    cursor: int = 0  # the remote cursor after this pull


Fetch = Callable[[urllib.request.Request, float], bytes]


def pull_events(base_url: str, inbox_dir: Path, token: str, *, page: int = PAGE, timeout: float = TIMEOUT,
                fetch: Fetch | None = None) -> PullReport:
    """Fetch every event after the saved remote cursor into the local inbox; see the module docstring."""
    _refuse_insecure(base_url)
    if not token:
        raise PullError("no token for the reader service's events", hint="set the variable [readers] token_env "
                        "names (NEWSLETTER_READERS_TOKEN by default) to the service's token")
    fetch = fetch or _fetch
    report = PullReport(base_url, cursor=_saved_cursor(inbox_dir, base_url))
    inbox = Inbox(inbox_dir)
    try:
        known: set[str] | None = None
        while True:
            events, cursor = _page(base_url, token, report.cursor, page, timeout, fetch)
            report.requests += 1
            report.fetched += len(events)
            if known is None:
                known = inbox.ids()
            new = [e for e in dict((e.id, e) for e in events).values() if e.id not in known]
            inbox.append(new)  # on disk before the cursor moves past them
            known.update(e.id for e in new)
            report.added += len(new)
            if cursor != report.cursor:
                _save_cursor(inbox_dir, base_url, cursor)
            if len(events) < page or cursor <= report.cursor:  # the last page
                report.cursor = max(cursor, report.cursor)
                return report
            report.cursor = cursor
    finally:
        inbox.close()


def _page(base_url: str, token: str, after: int, limit: int, timeout: float,
          fetch: Fetch) -> tuple[list[Event], int]:
    url = f"{base_url}events?after={after}&limit={limit}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}",
                                                   "Accept": "application/json",
                                                   "User-Agent": "newsletter-pull"})
    body = fetch(request, timeout)
    try:
        raw = json.loads(body)
        records, cursor = raw["events"], raw["cursor"]
        if not isinstance(records, list) or not isinstance(cursor, int) or isinstance(cursor, bool) or cursor < 0:
            raise ValueError("no list of events and cursor")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise PullError(f"{url}: the answer is not the reader service's events ({_short(exc)})",
                        hint="is [readers] url the service's base URL?") from None
    events = [parse_event(f"{url}: event {n}", json.dumps(_object(r, url, n)).encode())
              for n, r in enumerate(records, 1)]
    return events, cursor


def _object(record: Any, url: str, n: int) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise PullError(f"{url}: event {n} is not an object")
    return record


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would send the bearer token to another address: refuse it."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> None:
        raise PullError(f"{req.full_url}: the reader service redirected to {newurl.split('?')[0]} ({code}); "
                        "not followed, as it would carry the token",
                        hint="set [readers] url to the address the service answers at")


def _fetch(request: urllib.request.Request, timeout: float) -> bytes:
    """GET the request; PullError, one line and without the token, for anything but a 200 with a body."""
    url = request.full_url
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            body: bytes = response.read(MAX_BODY + 1)
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise PullError(f"{url}: the reader service refused the token ({exc.code})",
                            hint="give this machine the same token as the service: the variable [readers] "
                                 "token_env names") from None
        raise PullError(f"{url}: the reader service answered {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise PullError(f"{url}: cannot reach the reader service: {_short(exc.reason)}") from None
    except (OSError, ValueError) as exc:  # a timeout, a reset connection, a malformed answer
        raise PullError(f"{url}: cannot reach the reader service: {_short(exc)}") from None
    if len(body) > MAX_BODY:
        raise PullError(f"{url}: the answer is larger than {MAX_BODY // (1024 * 1024)} MB: not the service's events")
    return body


def _short(exc: object) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _refuse_insecure(base_url: str) -> None:
    url = urlsplit(base_url)
    loopback = url.scheme == "http" and (url.hostname or "") in ("127.0.0.1", "localhost", "::1")
    if not base_url or not (url.scheme == "https" or loopback):
        raise PullError(f"cannot pull from {base_url!r}: [readers] url must be an https:// URL "
                        "(http only on this machine)")


def _state_path(inbox_dir: Path) -> Path:
    return inbox_dir / STATE


def _saved_cursor(inbox_dir: Path, base_url: str) -> int:
    """The remote cursor saved by the last pull from this URL (0 for a new URL: ids prevent repeats)."""
    path = _state_path(inbox_dir)
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as exc:
        raise SubscriberError(f"{shown(path)}: cannot read the pull cursor ({_short(exc)})",
                              hint="delete it to fetch every event again (events already here are not "
                                   "added twice)") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cursor"), int) or raw["cursor"] < 0:
        raise SubscriberError(f"{shown(path)}: not a pull cursor file", hint="delete it to fetch every event again")
    return int(raw["cursor"]) if raw.get("url") == base_url else 0


def _save_cursor(inbox_dir: Path, base_url: str, cursor: int) -> None:
    atomic_write_text(_state_path(inbox_dir), json.dumps({"url": base_url, "cursor": cursor}) + "\n")
