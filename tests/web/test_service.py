"""The reader service as the world meets it: the real `newsletter serve` process on 127.0.0.1, plain HTTP.

Every page, every route of the contract and nothing else, the security headers, the body limits,
the rate limits, what lands in the inbox (and what never does), and a start that refuses to run
without its secret or with a broken newsletter.toml.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import http.client
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock
from urllib.parse import urlencode, urlsplit

import pytest

from newsletter.subscribers.schema import email_key
from newsletter.tokens import Signup, Tokens
from tests.helpers import copy_newsletter
from tests.web.running import PULL_TOKEN, ROOT, SECRET, Service, service_env, unsubscribe_token

FORM = "application/x-www-form-urlencoded"


class Answer:
    """One HTTP answer: status, headers (lower-case names), body text."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body
        self.text = body.decode("utf-8", "replace")


def call(service: Service, method: str, path: str, body: bytes | str | dict[str, str] | None = None,
         headers: dict[str, str] | None = None) -> Answer:
    """One request to the service; `path` is relative to its base URL unless it starts with '/'."""
    url = urlsplit(service.url)
    target = path if path.startswith("/") else url.path + path
    if isinstance(body, dict):
        body, headers = urlencode(body), {"Content-Type": FORM, **(headers or {})}
    data = body.encode() if isinstance(body, str) else body
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=15)
    try:
        conn.request(method, target, body=data, headers=headers or {})
        answer = conn.getresponse()
        return Answer(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
    finally:
        conn.close()


def journal(folder: Path) -> list[dict[str, object]]:
    path = folder / "inbox" / "events.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def confirmations(folder: Path) -> list[Path]:
    box = folder / "outbox" / "confirmations"
    return sorted(box.glob("*.eml")) if box.is_dir() else []


def confirm_link(eml: Path) -> str:
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(r"http://127\.0\.0\.1:\d+/\S*confirm/\S+", text)
    assert found, text
    return found.group(0)


@pytest.fixture(scope="module")
def letter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_newsletter(ROOT, tmp_path_factory.mktemp("service") / "letter")


@pytest.fixture(scope="module")
def service(letter: Path) -> Iterator[Service]:
    with Service(letter, NEWSLETTER_READERS__PER_IP_PER_HOUR="1000") as running:
        yield running


# The contract: routes, methods, headers, limits ------------------------------------------------------

def test_every_answer_carries_the_security_headers(service: Service) -> None:
    page = call(service, "GET", "subscribe")
    style = re.search(r"<style>(.*?)</style>", page.text, re.S)
    assert style
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    for answer in (page, call(service, "GET", "nothing-here"), call(service, "PUT", "subscribe"),
                   call(service, "POST", "subscribe", "x" * 20_000, {"Content-Type": FORM})):
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and f"style-src 'sha256-{digest}'" in csp
        assert "form-action 'self'" in csp and "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp
        assert "script" not in csp
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in page.text and "http://" not in style.group(1) and "https://" not in style.group(1)


def test_only_the_contracts_routes_exist(service: Service) -> None:
    for path in ("/subscribe", "/r/", "/r/admin", "/r/subscribe/", "/r/confirm/", "/r/unsubscribe/a/b",
                 "/r/events/", "/r/webhooks/other", "/r/../etc/passwd", "/favicon.ico"):
        assert call(service, "GET", path).status == 404, path
    for method, path in (("PUT", "subscribe"), ("DELETE", "subscribe"), ("OPTIONS", "subscribe"),
                         ("GET", "webhooks/sendgrid"), ("POST", "events"), ("PATCH", "unsubscribe/x")):
        assert call(service, method, path).status == 405, (method, path)


def test_a_body_over_the_limit_is_refused_with_413_and_nothing_is_recorded(service: Service, letter: Path) -> None:
    before = journal(letter)
    big = urlencode({"email": "big@example.com", "name": "x" * 50_000})
    assert call(service, "POST", "subscribe", big, {"Content-Type": FORM}).status == 413
    assert call(service, "POST", "unsubscribe/" + unsubscribe_token("a@example.com"), "List-Unsubscribe=One-Click&"
                + "x" * 20_000, {"Content-Type": FORM}).status == 413
    assert journal(letter) == before


# Subscribe --------------------------------------------------------------------------------------------

def test_the_subscribe_form_is_accessible_and_has_a_honeypot(service: Service) -> None:
    page = call(service, "GET", "subscribe")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="en"' in page.text and '<main id="main">' in page.text
    assert '<label for="email">' in page.text and '<label for="name">' in page.text
    assert 'name="website"' in page.text and 'action="/r/subscribe"' in page.text
    assert "prefers-color-scheme: dark" in page.text and 'name="viewport"' in page.text


@pytest.mark.parametrize("address", ["", "not-an-address", "ada@", "a@b@example.com", "ada@example.com\r\nBcc: x@y",
                                     "ada@exa mple.com"])
def test_an_invalid_address_gets_the_form_back_with_the_error(service: Service, letter: Path, address: str) -> None:
    before, sent = journal(letter), confirmations(letter)
    answer = call(service, "POST", "subscribe", {"email": address, "name": "Ada"})
    assert answer.status == 400
    assert 'role="alert"' in answer.text and 'aria-invalid="true"' in answer.text and "<form" in answer.text
    assert journal(letter) == before and confirmations(letter) == sent


def test_a_signup_sends_one_confirmation_and_records_the_request(service: Service, letter: Path) -> None:
    sent = confirmations(letter)
    answer = call(service, "POST", "subscribe", {"email": "Grace@Example.com", "name": "Grace\r\nHopper",
                                                 "tags": "readers,bad;tag", "website": ""})
    assert answer.status == 200 and "Check your inbox" in answer.text
    new = [p for p in confirmations(letter) if p not in sent]
    assert len(new) == 1
    message = email.message_from_bytes(new[0].read_bytes(), policy=email.policy.default)
    assert message["To"] == "Grace@example.com" and "Confirm" in str(message["Subject"])
    assert "List-Unsubscribe" not in message and "Hopper" not in new[0].read_text(errors="replace")
    event = journal(letter)[-1]
    assert event["type"] == "subscribe_requested" and event["email"] == "Grace@example.com"
    assert event["name"] == "Grace Hopper" and event["tags"] == ["readers"]


def test_every_valid_signup_gets_the_same_page_honeypot_and_rate_limit_included(service: Service,
                                                                                 letter: Path) -> None:
    first = call(service, "POST", "subscribe", {"email": "same@example.com"})
    before = len(confirmations(letter))
    pages = [call(service, "POST", "subscribe", {"email": "same@example.com"}) for _ in range(4)]
    bot = call(service, "POST", "subscribe", {"email": "bot-target@example.com", "website": "http://spam"})
    assert {a.status for a in [first, *pages, bot]} == {200}
    assert len({a.body for a in [first, *pages, bot]}) == 1  # no oracle
    assert len(confirmations(letter)) == before + 2  # at most 3 a day to one address
    assert not any("bot-target" in p.name for p in confirmations(letter))
    assert sum(e.get("email") == "same@example.com" for e in journal(letter)) == 3


# Confirm ----------------------------------------------------------------------------------------------

def test_a_confirm_link_shows_a_button_and_only_the_post_confirms(service: Service, letter: Path) -> None:
    call(service, "POST", "subscribe", {"email": "lin@example.com", "name": "Lin", "tags": "news"})
    link = confirm_link(next(p for p in confirmations(letter) if "lin@" in p.name))
    path = urlsplit(link).path
    before = journal(letter)
    for _ in range(2):  # a mail scanner opening the link changes nothing
        page = call(service, "GET", path)
        assert page.status == 200 and "<button" in page.text and 'method="post"' in page.text
    assert journal(letter) == before
    done = call(service, "POST", path, b"", {"Content-Type": FORM})
    assert done.status == 200 and "subscribed" in done.text
    event = journal(letter)[-1]
    assert (event["type"], event["email"], event["name"], event["tags"]) == ("confirmed", "lin@example.com", "Lin",
                                                                             ["news"])


def test_an_expired_or_forged_confirm_link_offers_to_subscribe_again(service: Service, letter: Path) -> None:
    with mock.patch("time.time", return_value=time.time() - 73 * 3600):
        old = Tokens((SECRET,)).confirm_token(Signup("old@example.com"))
    forged = Tokens(("another secret",)).confirm_token(Signup("evil@example.com"))
    unsubscribe = unsubscribe_token("evil@example.com")  # a token of the other kind
    before = journal(letter)
    for token, words in ((old, "expired"), (forged, "does not work"), (unsubscribe, "does not work"),
                         ("x" * 5000, "does not work")):
        for method in ("GET", "POST"):
            page = call(service, method, "confirm/" + token, b"" if method == "POST" else None,
                        {"Content-Type": FORM} if method == "POST" else None)
            assert page.status in (404, 410) and words in page.text and 'href="/r/subscribe"' in page.text
    assert journal(letter) == before


# Unsubscribe ------------------------------------------------------------------------------------------

def test_one_click_unsubscribe_records_the_reader_and_the_page_never_acts(service: Service, letter: Path) -> None:
    token = unsubscribe_token("leaving@example.com")
    before = journal(letter)
    page = call(service, "GET", "unsubscribe/" + token)
    assert page.status == 200 and "<button" in page.text and "One-Click" in page.text
    assert journal(letter) == before
    answer = call(service, "POST", "unsubscribe/" + token, "List-Unsubscribe=One-Click", {"Content-Type": FORM})
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/plain")
    event = journal(letter)[-1]
    assert event["type"] == "unsubscribed" and "email" not in event
    assert event["reader"] == Tokens((SECRET,)).reader_id(email_key("leaving@example.com"))
    browser = call(service, "POST", "unsubscribe/" + token, {"List-Unsubscribe": "One-Click", "page": "1"})
    assert browser.status == 200 and "unsubscribed" in browser.text and "<html" in browser.text


def test_an_unknown_unsubscribe_token_gets_200_and_records_nothing(service: Service, letter: Path) -> None:
    before = journal(letter)
    forged = Tokens(("another secret",)).unsubscribe_token("x@example.com")
    for token in ("nonsense", forged, "%C3%A9", "%00", "a" * 5000):
        answer = call(service, "POST", "unsubscribe/" + token, "List-Unsubscribe=One-Click", {"Content-Type": FORM})
        assert answer.status == 200, token
    assert journal(letter) == before


# The machines' routes ---------------------------------------------------------------------------------

def test_events_need_the_bearer_token(service: Service, letter: Path) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": PULL_TOKEN},
                    {"Authorization": "Basic " + PULL_TOKEN}, {"Authorization": "Bearer " + PULL_TOKEN + "x"}):
        answer = call(service, "GET", "events?after=0", headers=headers)
        assert answer.status == 401 and "events" not in json.loads(answer.body)
    call(service, "POST", "unsubscribe/" + unsubscribe_token("paged@example.com"), "List-Unsubscribe=One-Click",
         {"Content-Type": FORM})
    ok = {"Authorization": "Bearer " + PULL_TOKEN}
    everything = json.loads(call(service, "GET", "events?after=0&limit=10000", headers=ok).body)
    assert [e["id"] for e in everything["events"]] == [e["id"] for e in journal(letter)]
    first = json.loads(call(service, "GET", "events?after=0&limit=1", headers=ok).body)
    rest = json.loads(call(service, "GET", f"events?after={first['cursor']}", headers=ok).body)
    assert first["events"] + rest["events"] == everything["events"] and rest["cursor"] == everything["cursor"]
    assert call(service, "GET", "events?after=-1", headers=ok).status == 400
    assert call(service, "GET", "events?after=99999999", headers=ok).status == 400


def test_the_sendgrid_webhook_is_mounted(service: Service) -> None:
    answer = call(service, "POST", "webhooks/sendgrid", b"[]", {"Content-Type": "application/json"})
    assert answer.status in (403, 503)  # no key configured here: refused, nothing recorded


def test_no_secret_token_or_address_in_the_log_or_pages(service: Service, letter: Path) -> None:
    call(service, "GET", "unsubscribe/" + unsubscribe_token("quiet@example.com"))
    call(service, "POST", "subscribe", {"email": "quiet@example.com"})
    log = service.output()
    assert "GET /r/subscribe 200" in log and "/r/unsubscribe/… 200" in log
    for secret in (SECRET, PULL_TOKEN, unsubscribe_token("quiet@example.com"), "quiet@example.com",
                   "Grace", "lin@example.com"):
        assert secret not in log
    for answer in (call(service, "GET", "nothing"), call(service, "GET", "events")):
        assert SECRET not in answer.text and PULL_TOKEN not in answer.text
    assert SECRET not in (letter / "inbox" / "events.jsonl").read_text()


# Other settings ---------------------------------------------------------------------------------------

def test_without_double_opt_in_a_signup_is_confirmed_at_once_and_per_ip_limits_hold(tmp_path: Path) -> None:
    folder = copy_newsletter(ROOT, tmp_path / "letter")
    with Service(folder, NEWSLETTER_READERS__DOUBLE_OPT_IN="false", NEWSLETTER_READERS__PER_IP_PER_HOUR="2") as svc:
        answers = [call(svc, "POST", "subscribe", {"email": f"p{i}@example.com"}) for i in range(4)]
    assert {a.status for a in answers} == {200} and len({a.body for a in answers}) == 1
    assert [(e["type"], e["email"]) for e in journal(folder)] == [("confirmed", "p0@example.com"),
                                                                  ("confirmed", "p1@example.com")]
    assert confirmations(folder) == []


def test_a_base_url_without_a_path_serves_at_the_root(tmp_path: Path) -> None:
    folder = copy_newsletter(ROOT, tmp_path / "letter")
    svc = Service(folder)
    svc.url = f"http://127.0.0.1:{svc.port}/"
    svc.env["NEWSLETTER_READERS__URL"] = svc.url
    with svc:
        assert call(svc, "GET", "/subscribe").status == 200
        assert call(svc, "GET", "/r/subscribe").status == 404
        assert 'action="/subscribe"' in call(svc, "GET", "/subscribe").text


def serve_fails(folder: Path, **env: str) -> str:
    """Run `newsletter serve` expecting it to refuse to start; its stderr."""
    run = subprocess.run([sys.executable, "-m", "newsletter", "serve", "--port", "1"], cwd=folder,
                         env=service_env(1, **env), capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert len([line for line in run.stderr.splitlines() if line.startswith("error:")]) == 1, run.stderr
    return run.stderr


def test_serve_refuses_to_start_without_its_secret_or_with_a_broken_config(tmp_path: Path) -> None:
    folder = copy_newsletter(ROOT, tmp_path / "letter")
    assert "NEWSLETTER_UNSUBSCRIBE_SECRET is not set" in serve_fails(folder, NEWSLETTER_UNSUBSCRIBE_SECRET=" , ")
    assert "[readers] url" in serve_fails(folder, NEWSLETTER_READERS__URL="")
    assert "SENDGRID_API_KEY" in serve_fails(folder, NEWSLETTER_DELIVERY__PROVIDER="sendgrid", SENDGRID_API_KEY="")
    assert "SENDGRID_WEBHOOK_PUBLIC_KEY" in serve_fails(folder, SENDGRID_WEBHOOK_PUBLIC_KEY="not-a-key")
    (folder / "newsletter.toml").write_text("[newsletter\nname = 1\n", encoding="utf-8")
    assert "newsletter.toml" in serve_fails(folder)
    assert SECRET not in serve_fails(folder)
