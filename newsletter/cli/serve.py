"""`newsletter serve`: the reader service (subscribe, confirm, unsubscribe, SendGrid's events) under waitress.

Secrets are read here, from the environment only, and passed down: the unsubscribe secret list
([delivery] unsubscribe_secret_env; required), the pull token ([readers] token_env; optional),
SENDGRID_WEBHOOK_PUBLIC_KEY (optional) and the provider's credentials for confirmation emails.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from newsletter.cli.app import app
from newsletter.cli.common import ConfigOption, echo, handles_errors, readers_token, settings_for, unsubscribe_secrets
from newsletter.cli.send import credentials_for
from newsletter.errors import ConfigError

if TYPE_CHECKING:
    from flask import Flask

    from newsletter.config import Settings

WEBHOOK_KEY_ENV = "SENDGRID_WEBHOOK_PUBLIC_KEY"


@app.command()
@handles_errors
def serve(
    host: Annotated[str | None, typer.Option("--host", metavar="HOST", show_default=False,
                                             help="Listen on HOST (default: [readers] host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535, metavar="N", show_default=False,
                                             help="Listen on port N (default: [readers] port, 8025).")] = None,
    config: ConfigOption = None,
) -> None:
    """Run the reader service: subscribe, confirm and unsubscribe pages, SendGrid's webhook, events for pull.

    It only records what readers did, in the inbox (fsynced before each answer); `newsletter
    subscribers apply` folds the inbox into the list. Put it behind your https proxy at [readers] url.

    Example: newsletter serve --port 8025
    """
    from waitress import create_server

    from newsletter.web.app import WEBHOOK_LIMIT

    settings = settings_for(config, readers__host=host, readers__port=port)
    service = service_app(settings)
    r = settings.readers
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        server = create_server(service, host=r.host, port=r.port, threads=r.threads, ident="newsletter",
                               max_request_body_size=WEBHOOK_LIMIT + 1024,
                               clear_untrusted_proxy_headers=not r.trusted_proxies)
    except OSError as exc:
        raise ConfigError([f"cannot listen on {r.host}:{r.port}: {exc.strerror or exc}"],
                          hint="choose another --port, or stop what is using it") from None
    echo(f"Reader service of {settings.newsletter.name} on http://{r.host}:{r.port}"
         f"{_path(settings)} (public: {settings.readers_url}); inbox {settings.inbox_dir}")
    echo("Press Ctrl-C to stop.")
    try:
        server.run()
    except KeyboardInterrupt:
        echo("stopped")
    finally:
        server.close()


def service_app(settings: Settings) -> Flask:
    """The reader service for these settings, with its secrets from the environment; ConfigError if one is missing."""
    from newsletter.providers import missing_credentials
    from newsletter.web import create_app
    from newsletter.web.sendgrid_events import check_public_key

    if not settings.readers_url:
        raise ConfigError([f"{settings.config_path.name}: [readers] url is not set: the service needs its public "
                           "base URL for the links it sends"], hint='add [readers] url = "https://example.com/r/"')
    secrets = unsubscribe_secrets(settings)
    if not secrets:
        env = settings.delivery.unsubscribe_secret_env
        raise ConfigError([f"{env} is not set: the reader service signs and checks its links with it"],
                          hint=f"export {env}=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))') "
                               "(the same value `newsletter send` uses)")
    credentials = credentials_for(settings)
    if settings.readers.double_opt_in and (missing := missing_credentials(settings, credentials)) is not None:
        raise missing
    webhook_key = os.environ.get(WEBHOOK_KEY_ENV, "").strip()
    if webhook_key:
        check_public_key(webhook_key)
    return create_app(settings, secrets=secrets, credentials=credentials, pull_token=readers_token(settings),
                      webhook_key=webhook_key)


def _path(settings: Settings) -> str:
    from newsletter.web.pages import service_path

    return service_path(settings)


def application_from_environment(config: Path | None = None) -> Flask:
    """The WSGI application for another server (gunicorn, uwsgi): newsletter.toml from NEWSLETTER_CONFIG or ./."""
    from newsletter.errors import NewsletterError

    path = config or (Path(os.environ["NEWSLETTER_CONFIG"]) if os.environ.get("NEWSLETTER_CONFIG") else None)
    try:
        return service_app(settings_for(path))
    except NewsletterError as exc:
        lines = exc.problems if isinstance(exc, ConfigError) else [exc.message]
        hint = [f"hint: {exc.hint}"] if exc.hint else []
        raise SystemExit("\n".join([*(f"error: {line}" for line in lines), *hint])) from None
