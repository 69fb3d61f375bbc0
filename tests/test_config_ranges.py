"""Issue 9, item 16 (config): problems name the variable that set a value, ranges are checked,
and every problem is reported in one go."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
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


def problems(path: Path, environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=environ)
    return "\n".join(info.value.problems)


def test_a_bad_value_from_the_environment_names_the_variable_not_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    found = problems(path, {"NEWSLETTER_SMTP__SECURITY": "ssl"})
    assert found == ("environment variable NEWSLETTER_SMTP__SECURITY: [smtp] security: "
                     "must be starttls, tls or none, got 'ssl'")
    assert str(path) not in found


def test_the_same_bad_value_in_the_file_names_the_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '[smtp]\nsecurity = "ssl"\n')
    assert problems(path, {}) == f"{path}: [smtp] security: must be starttls, tls or none, got 'ssl'"


def test_the_cli_reports_the_variable(newsletter_dir: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["check", "the-fear-of-entering-the-room"],
                           env={"NEWSLETTER_SMTP__SECURITY": "ssl"})
    assert result.exit_code == 1
    assert "NEWSLETTER_SMTP__SECURITY: [smtp] security: must be starttls, tls or none" in result.output
    assert "newsletter.toml" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("NEWSLETTER_SMTP__PORT", "0", "must be between 1 and 65535, got 0"),
    ("NEWSLETTER_SMTP__PORT", "65536", "must be between 1 and 65535, got 65536"),
    ("NEWSLETTER_SMTP__PORT", "-25", "must be between 1 and 65535, got -25"),
    ("NEWSLETTER_SMTP__TIMEOUT", "0", "must be more than 0"),
    ("NEWSLETTER_SMTP__TIMEOUT", "-1", "must be more than 0"),
    ("NEWSLETTER_SMTP__TIMEOUT", "nan", "must be more than 0"),
    ("NEWSLETTER_SMTP__TIMEOUT", "inf", "at most 3600 seconds"),
    ("NEWSLETTER_SENDGRID__TIMEOUT", "0", "must be more than 0"),
    ("NEWSLETTER_SENDGRID__BATCH_SIZE", "0", "must be between 1 and 1000, got 0"),
    ("NEWSLETTER_SENDGRID__BATCH_SIZE", "1001", "must be between 1 and 1000, got 1001"),
    ("NEWSLETTER_SENDGRID__UNSUBSCRIBE_GROUP_ID", "0", "must be a group id"),
    ("NEWSLETTER_ARCHIVE__FEED_ENTRIES", "-1", "must be 0 (all issues) or more"),
    ("NEWSLETTER_SMTP__HOST", "", "must be a host name or address"),
    ("NEWSLETTER_SMTP__HOST", "mail example.com", "must be a host name or address"),
    ("NEWSLETTER_SMTP__CONNECTIONS", "0", "must be between 1 and 16, got 0"),
    ("NEWSLETTER_SMTP__CONNECTIONS", "17", "must be between 1 and 16, got 17"),
    ("NEWSLETTER_SMTP__MAX_PER_MINUTE", "-1", "must be 0 (no limit) or more, got -1"),
    ("NEWSLETTER_SMTP__MAX_PER_DAY", "-5", "must be 0 (no limit) or more, got -5"),
])
def test_values_are_range_checked(tmp_path: Path, name: str, value: str, expected: str) -> None:
    found = problems(write(tmp_path, MINIMAL), {name: value})
    section, _, key = name.removeprefix("NEWSLETTER_").lower().partition("__")
    assert found.startswith(f"environment variable {name}: [{section}] {key}: ") and expected in found


@pytest.mark.parametrize(("key", "value"), [("port", "0"), ("port", "70000"), ("timeout", "0.0")])
def test_range_problems_in_the_file_name_the_key(tmp_path: Path, key: str, value: str) -> None:
    path = write(tmp_path, MINIMAL + f"[smtp]\n{key} = {value}\n")
    assert problems(path, {}).startswith(f"{path}: [smtp] {key}: must be")


def test_every_kind_of_problem_is_reported_together(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("https://example.com/letter", "http://x.example")
                 + "[smtp]\nport = 0\n[sendgrid]\nbatch_size = 5000\n")
    env = {"NEWSLETTER_SMTP__SECURITY": "ssl", "NEWSLETTER_SMTP__TIMEOUT": "soon",
           "NEWSLETTER_ARCHIVE__FEED_ENTRIES": "-3"}
    found = problems(path, env).splitlines()
    assert sorted(found) == sorted([
        f"{path}: [newsletter] url: must be an absolute https:// URL, got 'http://x.example'",
        f"{path}: [smtp] port: must be between 1 and 65535, got 0",
        f"{path}: [sendgrid] batch_size: must be between 1 and 1000, got 5000",
        "environment variable NEWSLETTER_SMTP__SECURITY: [smtp] security: must be starttls, tls or none, got 'ssl'",
        "environment variable NEWSLETTER_SMTP__TIMEOUT: [smtp] timeout: expected a number, got 'soon'",
        "environment variable NEWSLETTER_ARCHIVE__FEED_ENTRIES: [archive] feed_entries: must be 0 (all issues) or more",
    ])


def test_a_password_put_where_its_variable_name_belongs_is_refused_and_never_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '[smtp]\npassword_env = "hunter2 is my pass!"\n')
    found = problems(path, {})
    assert "[smtp] password_env: must be the name of an environment variable" in found
    assert "hunter2" not in found


def test_ca_file_is_resolved_against_the_folder_and_must_exist(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '[smtp]\nca_file = "certs/ca.pem"\n')
    assert problems(path, {}) == f"{path}: [smtp] ca_file: no such file: {tmp_path / 'certs' / 'ca.pem'}"
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    settings = load_settings(path, environ={})
    assert settings.path(settings.smtp.ca_file) == (tmp_path / "certs" / "ca.pem").resolve()


@pytest.mark.parametrize("value", ["0", "17"])
def test_sendgrid_concurrency_is_1_to_16(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, MINIMAL + f"[sendgrid]\nconcurrency = {value}\n")
    assert problems(path, {}) == f"{path}: [sendgrid] concurrency: must be between 1 and 16, got {value}"
