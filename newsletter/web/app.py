"""The reader service as a Flask WSGI application: only the contract's routes, under the base URL's path.

    GET  P/subscribe                the form          POST P/subscribe            -> "check your inbox"
    GET  P/confirm/<token>          a Confirm button  POST P/confirm/<token>      -> confirmed
    GET  P/unsubscribe/<token>      a button          POST P/unsubscribe/<token>  -> unsubscribed (RFC 8058)
    POST P/webhooks/sendgrid        SendGrid's signed Event Webhook
    GET  P/events?after=N&limit=M   the inbox for `subscribers pull` (bearer token)

P is the path of [readers] url ("/" when it has none): a proxy passes the path through unchanged.
Anything else is 404, a wrong method 405, a body over its limit 413. Every answer carries the
security headers; a request is logged as one line without its token, its query or any address.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from newsletter.config import Settings
from newsletter.providers import Credentials
from newsletter.web.pages import service_path
from newsletter.web.sendgrid_events import MAX_BODY_BYTES
from newsletter.web.views import Secrets, Service

FORM_LIMIT = 8 * 1024  # a subscribe or a one-click form is a few hundred bytes
WEBHOOK_LIMIT = MAX_BODY_BYTES
access_log = logging.getLogger("newsletter.web.access")
error_log = logging.getLogger("newsletter.web")
ERRORS = {
    404: ("Page not found", "There is no page at this address."),
    405: ("Not allowed", "This page cannot be used that way."),
    413: ("Too large", "What was sent is too large."),
}


def create_app(settings: Settings, *, secrets: Sequence[str], credentials: Credentials | None = None,
               pull_token: str = "", webhook_key: str = "", clock: Callable[[], float] = time.time) -> Flask:
    """The reader service for one newsletter; `secrets` sign the links (newest first, at least one)."""
    service = Service(settings, Secrets(tuple(secrets), credentials or Credentials(), pull_token, webhook_key), clock)
    app = Flask(__name__, static_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=FORM_LIMIT, MAX_FORM_MEMORY_SIZE=FORM_LIMIT, MAX_FORM_PARTS=50,
                      TRAP_HTTP_EXCEPTIONS=False, PROPAGATE_EXCEPTIONS=False)
    app.extensions["newsletter.service"] = service
    add_routes(app, service, service_path(settings))
    add_guards(app, service)
    if settings.readers.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.readers.trusted_proxies,  # type: ignore[method-assign]
                                x_proto=0, x_host=0, x_port=0, x_prefix=0)
    return app


def add_routes(app: Flask, service: Service, path: str) -> None:
    """The contract's routes and no other (no automatic OPTIONS either: a wrong method is 405)."""

    def route(rule: str, endpoint: str, view: Callable[..., Response], *methods: str) -> None:
        app.add_url_rule(path + rule, endpoint, view, methods=list(methods), provide_automatic_options=False)

    route("subscribe", "subscribe_form", lambda: service.subscribe_form(request), "GET")
    route("subscribe", "subscribe", lambda: service.subscribe(request), "POST")
    route("confirm/<token>", "confirm", lambda token: service.confirm(request, token), "GET", "POST")
    route("unsubscribe/<token>", "unsubscribe", lambda token: service.unsubscribe(request, token), "GET", "POST")
    route("webhooks/sendgrid", "sendgrid_webhook", lambda: service.sendgrid_webhook(request), "POST")
    route("events", "events", lambda: service.events(request), "GET")


def add_guards(app: Flask, service: Service) -> None:
    """Body limits, error pages, security headers and the access log, for every answer."""

    @app.before_request
    def limit_body() -> Response | None:
        g.started = time.perf_counter()
        limit = WEBHOOK_LIMIT if request.endpoint == "sendgrid_webhook" else FORM_LIMIT
        request.max_content_length = limit
        if request.content_length is not None and request.content_length > limit:
            return service.error_page(413, *ERRORS[413])
        return None

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        heading, message = ERRORS.get(code, (exc.name, "The request could not be answered."))
        response = service.error_page(code, heading, message)
        if code == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def failure(exc: Exception) -> Response:
        error_log.error("internal error on %s %s", request.method, loggable_path(request.path), exc_info=exc)
        return service.error_page(500, "Something went wrong", "Nothing was recorded. Please try again later.")

    @app.after_request
    def headers(response: Response) -> Response:
        h = response.headers
        h["Content-Security-Policy"] = service.pages.csp
        h["Referrer-Policy"] = "no-referrer"
        h["X-Content-Type-Options"] = "nosniff"
        h["X-Frame-Options"] = "DENY"
        h["Cache-Control"] = "no-store"
        h.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        started = g.get("started")
        took = f" {1000 * (time.perf_counter() - started):.0f}ms" if started is not None else ""
        access_log.info("%s %s %s%s", request.method, loggable_path(request.path), response.status_code, took)
        return response


def loggable_path(path: str) -> str:
    """The request's path with any token cut out: confirm/… and unsubscribe/… name no one in a log."""
    for word in ("/confirm/", "/unsubscribe/"):
        head, found, _ = path.partition(word)
        if found:
            return head + found + "…"
    return path[:200] if path.isprintable() else "(unprintable path)"
