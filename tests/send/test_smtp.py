"""Whole sends through SMTP to an aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from tests.fakes import fixtures
from tests.fakes.smtp import FakeSMTP

SLUG = "the-fear-of-entering-the-room"
ACTIVE = ["ada.lovelace@example.com", "grace.hopper@example.org", "marek@example.net", "amira.haddad@example.com",
          "sofia.ruiz@example.org", "kenji.watanabe@example.jp", "lena.fischer@example.de", "noah.b@example.com",
          "priya.nair@example.in"]

smtp_env = fixtures.smtp_env  # a pytest fixture, shared by the test modules
smtp_server = fixtures.smtp_server  # a pytest fixture, shared by the test modules


@pytest.fixture(autouse=True, params=[1, 4], ids=["1-connection", "4-connections"])
def connections(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Every send here runs over one connection, then over four ([smtp] connections, issue 14)."""
    monkeypatch.setenv("NEWSLETTER_SMTP__CONNECTIONS", str(request.param))
    return int(request.param)


def same(got: list[str], expected: list[str], connections: int) -> bool:
    """The same messages; in the list's order too over one connection."""
    return got == expected if connections == 1 else sorted(got) == sorted(expected)


def test_smtp_send_refused_recipient_then_retry_failed(smtp_env: FakeSMTP, newsletter_dir: Path,
                                                       runner: CliRunner, connections: int) -> None:
    smtp_env.handler.refuse = {"marek@example.net"}
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 1
    assert "Sent 8, skipped 0 (already sent), failed 1" in result.output
    assert "marek@example.net: refused by 127.0.0.1" in result.output and "550" in result.output
    assert "--retry-failed" in result.output
    assert same(smtp_env.handler.delivered_to(), [a for a in ACTIVE if a != "marek@example.net"], connections)
    assert 1 <= smtp_env.handler.connections <= connections  # one connection a slot for the whole send
    plain = runner.invoke(app, ["send", SLUG, "--yes"])  # a plain rerun does not retry the failed
    assert "1 failed earlier" in plain.output and len(smtp_env.handler.delivered_to()) == 8
    smtp_env.handler.refuse = set()
    retry = runner.invoke(app, ["send", SLUG, "--yes", "--retry-failed"])
    assert retry.exit_code == 0, retry.output
    assert sorted(smtp_env.handler.delivered_to()) == sorted(ACTIVE)
    assert "status: sent" in (newsletter_dir / "issues" / f"2026-11-23-{SLUG}.md").read_text()


def test_smtp_password_comes_from_the_named_variable_and_is_never_shown(
        newsletter_dir: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeSMTP(users={"hailey": "pa55-word-from-env"}).start()
    try:
        env = {"NEWSLETTER_DELIVERY__PROVIDER": "smtp", "NEWSLETTER_SMTP__HOST": "127.0.0.1",
               "NEWSLETTER_SMTP__PORT": str(server.port), "NEWSLETTER_SMTP__SECURITY": "none",
               "NEWSLETTER_SMTP__USERNAME": "hailey", "NEWSLETTER_SMTP__PASSWORD_ENV": "MY_SMTP_PW"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        missing = runner.invoke(app, ["send", SLUG, "--yes"])
        assert missing.exit_code == 1 and "MY_SMTP_PW is not set" in missing.output
        wrong = runner.invoke(app, ["send", SLUG, "--yes"], env={"MY_SMTP_PW": "not-the-password"})
        assert wrong.exit_code == 1 and "refused the login for 'hailey'" in wrong.output
        assert "not-the-password" not in wrong.output
        ok = runner.invoke(app, ["send", SLUG, "--yes"], env={"MY_SMTP_PW": "pa55-word-from-env"})
        assert ok.exit_code == 0, ok.output
        assert server.logins == ["hailey"] and len(server.handler.delivered_to()) == 9
        assert "pa55-word-from-env" not in ok.output
    finally:
        server.stop()
