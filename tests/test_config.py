"""newsletter.toml -> env -> CLI overrides -> one frozen Settings; every error at once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from newsletter.config import load_settings
from newsletter.errors import ConfigError

MINIMAL = '''
[newsletter]
name = "Test Letter"
url = "https://example.com/letter"

[sender]
from = "Ed <ed@example.com>"
'''


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "newsletter.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_paths(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, MINIMAL), environ={})
    assert s.delivery.provider == "outbox" and s.subscribers.file == "subscribers.csv"
    assert s.subscribers_path == (tmp_path / "subscribers.csv").resolve()
    assert s.sender_domain == "example.com"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.delivery.provider = "smtp"  # type: ignore[misc]


def test_precedence_file_then_env_then_cli(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '\n[delivery]\nprovider = "smtp"\n[smtp]\nport = 2525\n')
    env = {"NEWSLETTER_DELIVERY__PROVIDER": "sendgrid", "NEWSLETTER_SMTP__PORT": "465",
           "NEWSLETTER_SENDGRID__CATEGORIES": "a, b", "NEWSLETTER_UNSUBSCRIBE_SECRET": "not an override"}
    s = load_settings(path, environ=env)
    assert s.delivery.provider == "sendgrid" and s.smtp.port == 465
    assert s.sendgrid.categories == ["a", "b"]
    s = load_settings(path, {"delivery.provider": "outbox", "smtp.port": None}, environ=env)
    assert s.delivery.provider == "outbox" and s.smtp.port == 465


def test_every_problem_is_reported_at_once_with_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, '''
[newsletter]
name = 42
url = "http://insecure.example.com"
colour = "red"

[sender]

[delivery]
provider = "carrier-pigeon"

[bogus]
x = 1
''')
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={"NEWSLETTER_SMTP__PORT": "not-a-number"})
    problems = "\n".join(info.value.problems)
    assert f"{path}: [newsletter] name: expected a string, got 42" in problems
    assert f"{path}: [newsletter] colour: unknown key" in problems
    assert f"{path}: [sender] from: required value is missing" in problems
    assert f"{path}: unknown section [bogus]" in problems
    assert "NEWSLETTER_SMTP__PORT: [smtp] port: expected an integer, got 'not-a-number'" in problems
    assert len(info.value.problems) >= 5


def test_semantic_checks(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("https://example.com/letter", "http://x.example")
                 + '[delivery]\nprovider = "pigeon"\nunsubscribe_url = "https://x.example/u"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    problems = "\n".join(info.value.problems)
    assert "[newsletter] url: must be an absolute https:// URL" in problems
    assert "[delivery] provider: must be one of outbox, sendgrid, smtp" in problems
    assert "[delivery] unsubscribe_url: must contain {email}" in problems


def test_unknown_env_override_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_DELIVERY__PROVIDR: unknown key"):
        load_settings(write(tmp_path, MINIMAL), environ={"NEWSLETTER_DELIVERY__PROVIDR": "smtp"})


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[newsletter\nname="), environ={})
