"""What each route of the reader service does. The service only records: it never reads or writes the list.

Every event is appended to the inbox and fsynced (Inbox.record) before the answer goes out, so a
200 means it is on disk. Nothing here logs an address or a token.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from flask import Request, Response

from newsletter.config import Settings
from newsletter.errors import ProviderError, SubscriberError
from newsletter.providers import Credentials
from newsletter.subscribers.inbox import EventType, Inbox
from newsletter.subscribers.provider_events import DeliveryEvents
from newsletter.subscribers.schema import control_character, email_key, normalize_email, tidy_name
from newsletter.tokens import Expired, Signup, Tokens
from newsletter.web import sendgrid_events
from newsletter.web.limits import RateLimit
from newsletter.web.mail import ConfirmationMailer
from newsletter.web.pages import Pages

log = logging.getLogger("newsletter.web")
SOURCE = "readers"  # the inbox events' source: the reader's own action through the service
ONE_CLICK = "List-Unsubscribe=One-Click"
MAX_ADDRESS = 320
MAX_NAME = 200
MAX_TAGS = 20
MAX_TAG = 64
EVENTS_LIMIT = 1000  # events per page of GET events unless ?limit= says fewer (at most MAX_EVENTS)
MAX_EVENTS = 10_000


@dataclass
class Secrets:
    """What the CLI read from the environment for the service; never printed."""

    signing: Sequence[str] = field(repr=False)  # the unsubscribe secret list, newest first
    credentials: Credentials = field(default_factory=Credentials, repr=False)
    pull_token: str = field(default="", repr=False)
    webhook_key: str = field(default="", repr=False)


class Service:
    """The state the routes share: the inbox, the tokens, the limits, the pages, the mailer."""

    def __init__(self, settings: Settings, secrets: Secrets, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.secrets = secrets
        self.clock = clock
        self.tokens = Tokens(tuple(secrets.signing))
        self.inbox = Inbox(settings.inbox_dir)
        self.store = DeliveryEvents(settings.inbox_dir)
        self.pages = Pages(settings)
        self.mailer = ConfirmationMailer(settings, secrets.credentials)
        r = settings.readers
        self.per_address = RateLimit(r.per_address_per_day, 24 * 3600)
        self.per_ip = RateLimit(r.per_ip_per_hour, 3600)

    # Pages -----------------------------------------------------------------------------------------

    def page(self, template: str, title: str, status: int = 200, **context: object) -> Response:
        """An HTML page of the service: readers_<template>.html."""
        return Response(self.pages.render(template, title, **context), status, mimetype="text/html")

    def error_page(self, status: int, heading: str, message: str) -> Response:
        return self.page("error", heading, status, heading=heading, message=message)

    # Subscribe -------------------------------------------------------------------------------------

    def subscribe_form(self, request: Request) -> Response:
        """GET subscribe: the form (a link may preset hidden tags with ?tags=a,b)."""
        return self.page("subscribe", "Subscribe", email="", name="", error="",
                         tags=",".join(clean_tags(request.args.getlist("tags"))))

    def subscribe(self, request: Request) -> Response:
        """POST subscribe: the same page whatever became of a valid address (no oracle)."""
        form = request.form
        ip_allowed = self.per_ip.allow(request.remote_addr or "")
        raw, name, tags = form.get("email", "").strip(), form.get("name", ""), clean_tags(form.getlist("tags"))
        problem, email = self._address(raw)
        name = tidy_name(name)  # one line: a line break in a name could never reach a header
        if not problem and len(name) > MAX_NAME:
            problem = f"The name is too long (at most {MAX_NAME} characters)."
        if problem:
            return self.page("subscribe", "Subscribe", 400, email=raw[:MAX_ADDRESS], name=name[:MAX_NAME],
                             error=problem, tags=",".join(tags))
        if not form.get("website") and ip_allowed and self.per_address.allow(email_key(email)):
            try:
                self._sign_up(Signup(email, name, tags))
            except ProviderError as exc:
                log.error("subscribe: %s", exc.message)
                return self.error_page(503, "Please try again later",
                                       "The confirmation email could not be sent just now. Nothing was recorded.")
        return self.page("check_inbox", "Check your inbox" if self.settings.readers.double_opt_in else "Thank you")

    def _address(self, raw: str) -> tuple[str, str]:
        """(problem, address): the address as the list will keep it, or why it is none."""
        if not raw:
            return "Please enter your email address.", ""
        if len(raw) > MAX_ADDRESS:
            return "That is too long to be an email address.", ""
        try:
            return "", normalize_email(raw)
        except SubscriberError as exc:
            reason = exc.message.partition(" is not a valid address: ")[2] or exc.message
            return f"That is not a valid email address: {reason}", ""

    def _sign_up(self, signup: Signup) -> None:
        if not self.settings.readers.double_opt_in:
            self.inbox.record(EventType.CONFIRMED, SOURCE, email=signup.email, name=signup.name, tags=signup.tags)
            return
        url = self.settings.readers_url + "confirm/" + self.tokens.confirm_token(signup)
        self.mailer.send(signup.email, url)
        self.inbox.record(EventType.SUBSCRIBE_REQUESTED, SOURCE, email=signup.email, name=signup.name,
                          tags=signup.tags)

    # Confirm ---------------------------------------------------------------------------------------

    def confirm(self, request: Request, token: str) -> Response:
        """GET shows a Confirm button and changes nothing (mail scanners open links); POST records it."""
        try:
            signup = self.tokens.open_confirm(token, self.settings.readers.confirm_hours * 3600)
        except Expired:
            return self.page("link_invalid", "Link expired", 410, expired=True)
        if signup is None:
            return self.page("link_invalid", "Link not valid", 404, expired=False)
        if request.method != "POST":
            return self.page("confirm", "Confirm your subscription")
        self.inbox.record(EventType.CONFIRMED, SOURCE, email=signup.email, name=signup.name, tags=signup.tags)
        return self.page("subscribed", "Subscribed")

    # Unsubscribe -----------------------------------------------------------------------------------

    def unsubscribe(self, request: Request, token: str) -> Response:
        """GET shows an Unsubscribe button; POST (RFC 8058 one-click) records it and answers 200, always."""
        if request.method != "POST":
            return self.page("unsubscribe", "Unsubscribe")
        if not one_click(request):
            return Response(f"expected the body {ONE_CLICK} (RFC 8058)\n", 400, mimetype="text/plain")
        reader = self.tokens.open_unsubscribe(token)
        if reader is not None:
            self.inbox.record(EventType.UNSUBSCRIBED, SOURCE, reader=reader)
        if request.form.get("page"):
            return self.page("unsubscribed", "Unsubscribed")
        return Response("unsubscribed\n", 200, mimetype="text/plain")

    # Machines --------------------------------------------------------------------------------------

    def sendgrid_webhook(self, request: Request) -> Response:
        """POST webhooks/sendgrid: SendGrid's signed events (newsletter.web.sendgrid_events)."""
        status, text = sendgrid_events.handle(
            request.get_data(cache=False), dict(request.headers), public_key=self.secrets.webhook_key,
            inbox=self.inbox, store=self.store, now=self.clock())
        return Response(text.rstrip("\n") + "\n", status, mimetype="text/plain")

    def events(self, request: Request) -> Response:
        """GET events?after=N&limit=M: the inbox from a cursor, for `subscribers pull`, behind the bearer token."""
        if not self._authorized(request.headers.get("Authorization", "")):
            return Response(json.dumps({"error": "missing or wrong bearer token"}), 401, mimetype="application/json",
                            headers={"WWW-Authenticate": 'Bearer realm="newsletter"'})
        try:
            after = int(request.args.get("after", "0"))
            limit = min(int(request.args.get("limit", str(EVENTS_LIMIT))), MAX_EVENTS)
            if after < 0 or limit < 1:
                raise ValueError
            events, cursor = self.inbox.read(after, limit)
        except ValueError:
            return Response(json.dumps({"error": "after and limit must be whole numbers (limit at least 1)"}), 400,
                            mimetype="application/json")
        except SubscriberError as exc:
            return Response(json.dumps({"error": exc.message}), 400, mimetype="application/json")
        body = json.dumps({"events": [e.record() for e in events], "cursor": cursor}, ensure_ascii=False)
        return Response(body, 200, mimetype="application/json")

    def _authorized(self, header: str) -> bool:
        expected = self.secrets.pull_token
        scheme, _, given = header.partition(" ")
        if not expected or scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected.encode("utf-8"))


def one_click(request: Request) -> bool:
    """Whether the POST says List-Unsubscribe=One-Click: as a form field (RFC 8058) or as the bare body."""
    if request.form.get("List-Unsubscribe", "").strip() == "One-Click":
        return True
    return request.get_data(cache=True)[:100].strip() == ONE_CLICK.encode()


def clean_tags(values: Sequence[str]) -> tuple[str, ...]:
    """The form's tags (comma-separated, from hidden inputs): those the list can keep, at most MAX_TAGS."""
    tags = (t.strip() for value in values for t in value.split(","))
    ok = (t for t in tags if t and len(t) <= MAX_TAG and ";" not in t and control_character(t) is None)
    return tuple(dict.fromkeys(ok))[:MAX_TAGS]
