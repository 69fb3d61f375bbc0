"""An HTTP server on 127.0.0.1 that speaks SendGrid's v3 API, strictly.

Every /v3/mail/send body is validated against SendGrid's own OpenAPI schema
(<repo>/../shared/sendgrid/tsg_mail_v3.json, with its documented custom_args fix) and against
the limits the schema does not encode (../shared/sendgrid/README.md). Accepted messages are
"delivered" to per-recipient inboxes with substitutions applied the way SendGrid does, so a
test can read what each person got. Faults can be planned per mail-send request: 429 with
reset headers, 500/503, slow answers, connections dropped before or after accepting, a hang.

Category statistics (GET /v3/categories/stats and /sums) answer from figures a test stores with
add_category_stats, the query checked against tsg_stats_v3.json (tests/fakes/sendgrid_stats.py).

It speaks HTTP/1.1 with keep-alive (as SendGrid does): `connections` counts the TCP connections
it accepted, and `latency` delays every mail-send answer (the benchmarks' network).

Run alone (for bench/): python -m tests.fakes.sendgrid [--key KEY] [--no-validate] [--latency SECONDS]
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.sendgrid_checks import limit_errors, schema_errors
from tests.fakes.sendgrid_stats import (
    STATS_PATHS,
    Figures,
    QueryError,
    check_query,
    checked_figures,
    stats_answer,
    sums_answer,
)

MAX_BODY = 30 * 1024 * 1024
ASM_TAG = "<%asm_group_unsubscribe_raw_url%>"
SUPPRESSION_KINDS = ("unsubscribes", "bounces", "spam_reports", "invalid_emails", "blocks")
FAULTS = ("429", "500", "503", "401", "slow", "drop_before", "drop_after", "hang")


@dataclass
class Delivered:
    """One message as one recipient would get it."""

    email: str
    name: str
    subject: str
    text: str
    html: str
    headers: dict[str, str]
    message_id: str
    send_at: int | None = None
    batch_id: str | None = None
    categories: list[str] = field(default_factory=list)
    custom_args: dict[str, str] = field(default_factory=dict)
    cancelled: bool = False
    tracking_settings: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=64)
def _pattern(keys: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True)))


def _substitute(text: str, subs: dict[str, str]) -> str:
    """One pass over the text, like message.fill: a value is never substituted again."""
    if not subs:
        return text
    return _pattern(tuple(subs)).sub(lambda m: subs[m.group(0)], text)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a window of 16 connects at once must not overflow the listen backlog


class FakeSendGrid:
    """The server and everything it saw. Use start()/stop() or the pytest fixture."""

    def __init__(self, api_key: str = "SG.fake-key-for-tests", *, validate: bool = True,
                 keep_content: bool = True) -> None:
        self.api_key = api_key
        self.validate = validate
        self.keep_content = keep_content  # False (bench): remember who got what, not the text
        self.lock = threading.Lock()
        self.delivered: list[Delivered] = []
        self.tally: dict[str, int] = {}  # address -> messages, when keep_content is False
        self.requests: list[tuple[str, str, int | str]] = []  # (method, path, status or fault)
        self.mail_requests = 0
        self.faults: dict[int, str] = {}  # mail-send request number (1-based) -> fault
        self.fault_every: tuple[int, tuple[str, ...]] | None = None  # (n, cycle): a fault every n requests
        self.faults_for: dict[str, str] = {}  # address -> fault, once, for the first request carrying it
        self.reject: set[str] = set()  # addresses answered with a 400 naming their personalization
        self.reject_unnamed: bool = False  # ... or with a 400 that names no field
        self.reset_in = 1.0  # seconds until X-RateLimit-Reset on a 429
        self.slow_seconds = 3.0
        self.latency = 0.0  # seconds added to every mail-send answer (bench: a realistic network)
        self.connections = 0  # TCP connections accepted (keep-alive reuses one for many requests)
        self.close_after_answer = False  # hang up after each answer, unannounced (an idle connection's timeout)
        self.suppressions: dict[str, list[dict[str, Any]]] = {k: [] for k in SUPPRESSION_KINDS}
        self.groups: dict[int, list[str]] = {}
        self.batches: dict[str, str] = {}  # batch_id -> "" | "cancel"
        self.suppression_queries: list[tuple[str, dict[str, str]]] = []
        self.category_stats: Figures = {}  # date -> category -> metrics; see add_category_stats
        self.stats_queries: list[tuple[str, dict[str, list[str]]]] = []  # (path, query) of each stats request
        self.hanging = threading.Event()  # set when a "hang" fault holds a request
        self.release = threading.Event()  # set by the test to let a hung request go (unaccepted)
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # -- running --------------------------------------------------------------------------------

    def start(self) -> FakeSendGrid:
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- what a test reads ----------------------------------------------------------------------

    def inbox(self, email: str) -> list[Delivered]:
        """Messages to this address that were not cancelled."""
        with self.lock:
            return [d for d in self.delivered if d.email == email.lower() and not d.cancelled]

    def counts(self) -> dict[str, int]:
        """address -> number of (not cancelled) messages it got."""
        out: dict[str, int] = dict(self.tally)
        with self.lock:
            for d in self.delivered:
                if not d.cancelled:
                    out[d.email] = out.get(d.email, 0) + 1
        return out

    def add_category_stats(self, date: str, category: str, **metrics: int) -> None:
        """Store one day's figures of one category (metrics left out are 0; unknown names refused)."""
        with self.lock:
            self.category_stats.setdefault(date, {})[category] = checked_figures(date, category, metrics)

    def fault_for(self, number: int, raw: bytes = b"") -> str | None:
        with self.lock:  # by address first: with requests in flight at once, their numbers are a race
            for address, fault in list(self.faults_for.items()):
                if f'"{address}"'.encode() in raw:
                    del self.faults_for[address]
                    return fault
        if number in self.faults:
            return self.faults[number]
        if self.fault_every and number % self.fault_every[0] == 0:
            cycle = self.fault_every[1]
            return cycle[(number // self.fault_every[0] - 1) % len(cycle)]
        return None

    # -- mail send ------------------------------------------------------------------------------

    def accept(self, body: dict[str, Any]) -> str:
        """Deliver an accepted body to its recipients' inboxes; return the X-Message-Id."""
        message_id = f"fake{next(self._ids):06d}.{secrets.token_hex(4)}"
        if not self.keep_content:  # the benchmark: count who got what, nothing more
            with self.lock:
                for p in body["personalizations"]:
                    for r in p["to"]:
                        address = r["email"].lower()
                        self.tally[address] = self.tally.get(address, 0) + 1
            return message_id
        content = {c["type"]: c["value"] for c in body["content"]}
        shared = dict(body.get("headers", {}))
        group = body.get("asm", {}).get("group_id")
        for p in body["personalizations"]:
            subs = dict(p.get("substitutions", {}))
            for r in p["to"]:
                unsubscribe = f"{self.url}/asm/unsubscribe?group={group}&e={r['email']}"
                html, text = ((_substitute(content.get(t, ""), subs) for t in ("text/html", "text/plain"))
                              if self.keep_content else ("", ""))
                if group is not None:
                    html, text = html.replace(ASM_TAG, unsubscribe), text.replace(ASM_TAG, unsubscribe)
                delivered = Delivered(
                    r["email"].lower(), r.get("name", ""), _substitute(p.get("subject", body.get("subject", "")), subs),
                    text, html, {**shared, **p.get("headers", {})}, message_id,
                    p.get("send_at", body.get("send_at")), body.get("batch_id"), list(body.get("categories", [])),
                    dict(body.get("custom_args", {})), tracking_settings=dict(body.get("tracking_settings", {})),
                )
                if delivered.batch_id and self.batches.get(delivered.batch_id) == "cancel":
                    delivered.cancelled = True
                with self.lock:
                    self.delivered.append(delivered)
        return message_id

    def check_mail(self, raw: bytes) -> tuple[int, list[dict[str, Any]], dict[str, Any] | None]:
        """(status, errors, body) for a /v3/mail/send request body."""
        if len(raw) >= MAX_BODY:
            return 413, [{"message": "Request entity too large", "field": None, "help": None}], None
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, [{"message": "Bad Request", "field": None, "help": None}], None
        if self.validate:
            errors = schema_errors(body) or limit_errors(body, time.time())
            if errors:
                return 400, errors, None
        rejected = [{"message": "Does not contain a valid address.",
                     "field": None if self.reject_unnamed else f"personalizations.{i}.to.0.email", "help": None}
                    for i, p in enumerate(body["personalizations"]) if p["to"][0]["email"].lower() in self.reject]
        if rejected:
            return 400, rejected[:1] if self.reject_unnamed else rejected, None
        return 202, [], body


def _handler_for(fake: FakeSendGrid) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "FakeSendGrid/1"
        protocol_version = "HTTP/1.1"  # keep-alive unless the client says Connection: close

        def setup(self) -> None:
            super().setup()
            with fake.lock:
                fake.connections += 1

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass

        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._route("POST", raw)

        def do_GET(self) -> None:  # noqa: N802
            self._route("GET", b"")

        def _route(self, method: str, raw: bytes) -> None:
            url = urlsplit(self.path)
            if url.path == "/_fake/stats":  # not SendGrid's: what the benchmark reads from outside
                counts = fake.counts()
                self._answer(method, url.path, 200, {"mail_requests": fake.mail_requests, "recipients": len(counts),
                                                     "max_per_recipient": max(counts.values(), default=0)})
                return
            if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                self._answer(method, url.path, 401, {"errors": [{"message": "The provided authorization grant "
                             "is invalid, expired, or revoked", "field": None, "help": None}]})
                return
            routes: dict[tuple[str, str], Callable[[], None]] = {
                ("POST", "/v3/mail/send"): lambda: self._mail_send(raw),
                ("POST", "/v3/mail/batch"): self._create_batch,
                ("POST", "/v3/user/scheduled_sends"): lambda: self._scheduled(raw),
            }
            if (method, url.path) in routes:
                routes[(method, url.path)]()
            elif method == "GET" and url.path.startswith("/v3/suppression/"):
                self._suppressions(url.path.rsplit("/", 1)[1], parse_qs(url.query))
            elif method == "GET" and url.path in STATS_PATHS:
                self._category_stats(url.path, parse_qs(url.query, keep_blank_values=True))
            elif method == "GET" and re.fullmatch(r"/v3/asm/groups/\d+/suppressions", url.path):
                self._answer(method, url.path, 200, fake.groups.get(int(url.path.split("/")[4]), []))
            else:
                self._answer(method, url.path, 404, {"errors": [{"message": "not found", "field": None}]})

        def _answer(self, method: str, path: str, status: int, payload: Any = None,
                    headers: dict[str, str] | None = None) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            with fake.lock:
                fake.requests.append((method, path, status))
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _mail_send(self, raw: bytes) -> None:
            if fake.latency:
                time.sleep(fake.latency)
            with fake.lock:
                fake.mail_requests += 1
                number = fake.mail_requests
            fault = fake.fault_for(number, raw)
            if fault in ("429", "500", "503", "401"):
                self._fault(int(fault))
                return
            if fault in ("drop_before", "hang"):
                if fault == "hang":
                    fake.hanging.set()
                    fake.release.wait(60)
                with fake.lock:
                    fake.requests.append(("POST", "/v3/mail/send", fault))
                self.close_connection = True
                return
            status, errors, body = fake.check_mail(raw)
            if body is None:
                self._answer("POST", "/v3/mail/send", status, {"errors": errors})
                return
            message_id = fake.accept(body)
            if fault == "drop_after":
                with fake.lock:
                    fake.requests.append(("POST", "/v3/mail/send", fault))
                self.close_connection = True
                return
            if fault == "slow":
                time.sleep(fake.slow_seconds)
            self._answer("POST", "/v3/mail/send", 202, None, {"X-Message-Id": message_id})
            if fake.close_after_answer:
                self.close_connection = True

        def _fault(self, status: int) -> None:
            headers = {}
            if status == 429:
                headers = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                           "X-RateLimit-Reset": str(int(time.time() + fake.reset_in))}
            self._answer("POST", "/v3/mail/send", status, {"errors": [{"message": f"injected {status}",
                                                                       "field": None, "help": None}]}, headers)

        def _create_batch(self) -> None:
            batch_id = secrets.token_hex(16)
            fake.batches[batch_id] = ""
            self._answer("POST", "/v3/mail/batch", 201, {"batch_id": batch_id})

        def _scheduled(self, raw: bytes) -> None:
            body = json.loads(raw or b"{}")
            batch_id, status = body.get("batch_id"), body.get("status")
            error = None
            if batch_id not in fake.batches or status not in ("cancel", "pause"):
                error = "batch_id or status is not valid"
            elif fake.batches[batch_id]:
                error = "a status has already been set for this batch_id"
            elif any(d.batch_id == batch_id and (d.send_at or 0) - time.time() < 600 for d in fake.delivered):
                error = "a batch can be cancelled only until 10 minutes before its send_at"
            if error:
                self._answer("POST", "/v3/user/scheduled_sends", 400, {"errors": [{"message": error, "field": None}]})
                return
            fake.batches[batch_id] = status
            with fake.lock:
                for d in fake.delivered:
                    if d.batch_id == batch_id:
                        d.cancelled = True
            self._answer("POST", "/v3/user/scheduled_sends", 201, {"batch_id": batch_id, "status": status})

        def _category_stats(self, path: str, query: dict[str, list[str]]) -> None:
            with fake.lock:
                fake.stats_queries.append((path, query))
                figures = {day: dict(by_category) for day, by_category in fake.category_stats.items()}
            try:
                values = check_query(path, query)
            except QueryError as exc:
                self._answer("GET", path, 400, {"errors": [{"field": exc.field, "message": str(exc)}]})
                return
            answer = sums_answer(figures, values) if path.endswith("/sums") else stats_answer(figures, values)
            self._answer("GET", path, 200, answer)

        def _suppressions(self, kind: str, query: dict[str, list[str]]) -> None:
            path = f"/v3/suppression/{kind}"
            q = {k: v[0] for k, v in query.items()}
            with fake.lock:
                fake.suppression_queries.append((kind, q))
            if kind not in SUPPRESSION_KINDS:
                self._answer("GET", path, 404, {"errors": [{"message": "not found", "field": None}]})
                return
            limit, offset = int(q.get("limit", 500)), int(q.get("offset", 0))
            if not 1 <= limit <= 500:
                self._answer("GET", path, 400, {"errors": [{"message": "limit must be 1..500", "field": "limit"}]})
                return
            start, end = int(q.get("start_time", 0)), int(q.get("end_time", 2**62))
            rows = [r for r in fake.suppressions[kind] if start <= r["created"] <= end]
            self._answer("GET", path, 200, rows[offset:offset + limit])

    return Handler


def main() -> None:
    """Serve until killed; print the URL on the first line (for bench/)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--key", default="SG.fake-key-for-tests")
    parser.add_argument("--no-validate", action="store_true")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each mail-send answer")
    args = parser.parse_args()
    fake = FakeSendGrid(args.key, validate=not args.no_validate, keep_content=False).start()
    fake.latency = args.latency
    print(fake.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
