"""pytest fixtures for the fake servers; a test module imports the ones it uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.smtp import FakeSMTP

API_KEY = "SG.Zq9-this-key-must-never-be-printed.XyZ0123456789"


@pytest.fixture
def sendgrid_server() -> Iterator[FakeSendGrid]:
    """A SendGrid-speaking server on 127.0.0.1 that accepts API_KEY."""
    fake = FakeSendGrid(API_KEY).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def sendgrid_env(sendgrid_server: FakeSendGrid, newsletter_dir: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSendGrid:
    """The newsletter folder set up to send through the fake SendGrid (host and key from the environment)."""
    monkeypatch.setenv("NEWSLETTER_SENDGRID__HOST", sendgrid_server.url)
    monkeypatch.setenv("NEWSLETTER_DELIVERY__PROVIDER", "sendgrid")
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    return sendgrid_server


@pytest.fixture
def smtp_server() -> Iterator[FakeSMTP]:
    """An aiosmtpd server on 127.0.0.1 with no auth and no TLS."""
    fake = FakeSMTP().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def smtp_env(smtp_server: FakeSMTP, newsletter_dir: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSMTP:
    """The newsletter folder set up to send through the fake SMTP server."""
    monkeypatch.setenv("NEWSLETTER_DELIVERY__PROVIDER", "smtp")
    monkeypatch.setenv("NEWSLETTER_SMTP__HOST", "127.0.0.1")
    monkeypatch.setenv("NEWSLETTER_SMTP__PORT", str(smtp_server.port))
    monkeypatch.setenv("NEWSLETTER_SMTP__SECURITY", "none")
    return smtp_server
