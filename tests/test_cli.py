"""The issue commands as a writer runs them: build, check, new, init, --version, --help."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from newsletter import __version__
from newsletter.cli import app
from tests.helpers import one_error_line

SLUG = "the-fear-of-entering-the-room"


def test_build_writes_html_text_and_eml_and_prints_sizes(newsletter_dir: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["build", SLUG])
    assert result.exit_code == 0, result.output
    folder = newsletter_dir / "build" / SLUG
    assert "Built the-fear-of-entering-the-room: The Fear of Entering the Room" in result.stdout
    assert "email.html" in result.stdout and "KB" in result.stdout and "0 errors" in result.stdout
    msg = email.message_from_bytes((folder / "message.eml").read_bytes(), policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["To"] == "Sample Reader <reader@example.com>"
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert html == (folder / "email.html").read_text(encoding="utf-8")


def test_build_by_path_and_out_dir(newsletter_dir: Path, runner: CliRunner) -> None:
    path = next((newsletter_dir / "issues").glob("*.md"))
    result = runner.invoke(app, ["build", str(path), "--out", str(newsletter_dir / "x")])
    assert result.exit_code == 0 and (newsletter_dir / "x" / SLUG / "email.txt").is_file()


def test_check_lists_findings_and_fails_on_errors(newsletter_dir: Path, runner: CliRunner) -> None:
    ok = runner.invoke(app, ["check", SLUG])
    assert ok.exit_code == 0 and "of Gmail's 102 KB clip" in ok.stdout
    issue = next((newsletter_dir / "issues").glob("*.md"))
    issue.write_text(issue.read_text(encoding="utf-8") + "\nTK: a closing line. [click here](https://x.example)\n"
                     "![](https://x.example/a.png)\n", encoding="utf-8")
    bad = runner.invoke(app, ["check", SLUG])
    assert bad.exit_code == 1
    assert "leftover placeholder 'TK'" in bad.stdout and "vague link text 'click here'" in bad.stdout
    assert "has no alt text" in bad.stdout and "has no width" in bad.stdout
    assert f"{issue}:" in bad.stdout  # the placeholder is reported with file:line


def test_check_reports_missing_unsubscribe_and_postal_address(newsletter_dir: Path, runner: CliRunner) -> None:
    config = newsletter_dir / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    text = text.replace('unsubscribe_mailto = "unsubscribe@haileyscomet.example.com"', "")
    text = text.replace('url = "https://haileyscomet.example.com/r/"', "")
    config.write_text(text.replace("postal_address = ", "# postal_address = "), encoding="utf-8")
    result = runner.invoke(app, ["check", SLUG])
    assert result.exit_code == 1
    assert "no unsubscribe method" in result.stdout and "postal_address is empty" in result.stdout


def test_bad_inputs_give_one_line_with_file_and_reason(newsletter_dir: Path, runner: CliRunner) -> None:
    line = one_error_line(runner.invoke(app, ["build", "no-such-issue"]))
    assert "no issue with slug or path 'no-such-issue'" in line
    line = one_error_line(runner.invoke(app, ["build", "missing.md"]))
    assert "missing.md: no such issue file" in line
    broken = newsletter_dir / "issues" / "2026-12-01-broken.md"
    broken.write_text("---\ntitle: [oops\n---\nBody\n", encoding="utf-8")
    line = one_error_line(runner.invoke(app, ["check", str(broken)]))
    assert f"{broken}:3: front matter is not valid YAML" in line
    config = newsletter_dir / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[archive]\nbogus = 1\n", encoding="utf-8")
    line = one_error_line(runner.invoke(app, ["check", SLUG]))
    assert "[archive] bogus: unknown key" in line and "newsletter.toml" in line


def test_missing_config_explains_itself(tmp_path: Path, runner: CliRunner, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["build", SLUG])
    assert "no newsletter.toml here" in one_error_line(result)
    assert "newsletter init" in result.stderr


def test_template_error_names_the_template_file(newsletter_dir: Path, runner: CliRunner) -> None:
    (newsletter_dir / "templates" / "email.txt").write_text("{{ title }\n", encoding="utf-8")
    line = one_error_line(runner.invoke(app, ["build", SLUG]))
    assert "templates/email.txt:1: template error" in line


def test_new_and_init(tmp_path: Path, runner: CliRunner, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init", "letter", "--name", "The Long Read"])
    assert result.exit_code == 0, result.output
    assert 'name = "The Long Read"' in (tmp_path / "letter" / "newsletter.toml").read_text()
    assert (tmp_path / "letter" / "subscribers.csv").read_text().startswith("email,name,status,tags")
    again = runner.invoke(app, ["init", "letter"])
    assert "already exists" in one_error_line(again)
    monkeypatch.chdir(tmp_path / "letter")
    result = runner.invoke(app, ["new", "On Colour"])
    assert result.exit_code == 0 and "Created issues/" in result.stdout
    created = next((tmp_path / "letter" / "issues").glob("*-on-colour.md"))
    assert "title: \"On Colour\"" in created.read_text()
    # a fresh newsletter builds, and check flags its TK placeholder
    built = runner.invoke(app, ["check", "on-colour"])
    assert built.exit_code == 1 and "leftover placeholder 'TK'" in built.stdout


def _commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((prefix + name, cmd))
        if hasattr(cmd, "commands"):
            out.extend(_commands(cmd, prefix + name + " "))
    return out


def test_every_command_has_help_with_an_example(runner: CliRunner) -> None:
    root = typer.main.get_command(app)
    commands = _commands(root)
    assert len(commands) >= 4
    for name, cmd in commands:
        result = runner.invoke(app, [*name.split(), "--help"])
        assert result.exit_code == 0, name
        if not hasattr(cmd, "commands"):
            assert "Example:" in result.stdout, f"'newsletter {name} --help' has no example"


def test_version_and_module_entry_point(runner: CliRunner) -> None:
    assert runner.invoke(app, ["--version"]).stdout.strip() == f"newsletter {__version__}"
    proc = subprocess.run([sys.executable, "-m", "newsletter", "--version"], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == f"newsletter {__version__}"


def test_a_real_build_process_prints_no_warnings(newsletter_dir: Path) -> None:
    proc = subprocess.run([sys.executable, "-W", "default", "-m", "newsletter", "build", SLUG],
                          capture_output=True, text=True, cwd=newsletter_dir)
    assert proc.returncode == 0 and proc.stderr == ""  # no cssutils or deprecation noise
