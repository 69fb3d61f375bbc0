"""Issue 9, the send itself: an outbox run is a rehearsal; one recipient's bad message fails only them;
a send that failed everyone keeps failing on rerun; a corrupted ledger line is one clear error."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.errors import RecipientError
from newsletter.providers import Letter, Outgoing, Report
from newsletter.providers.mime import MessageFactory
from newsletter.send.ledger import read_ledger
from newsletter.subscribers.schema import email_key
from tests.conftest import ROOT
from tests.fakes import fixtures
from tests.fakes.smtp import FakeSMTP
from tests.helpers import copy_newsletter, one_error_line

SLUG = "the-fear-of-entering-the-room"
ACTIVE = ["ada.lovelace@example.com", "grace.hopper@example.org", "marek@example.net", "amira.haddad@example.com",
          "sofia.ruiz@example.org", "kenji.watanabe@example.jp", "lena.fischer@example.de", "noah.b@example.com",
          "priya.nair@example.in"]
ISSUE = f"issues/2026-11-23-{SLUG}.md"

smtp_server = fixtures.smtp_server  # pytest fixtures, shared by the test modules
smtp_env = fixtures.smtp_env


def eml_count(folder: Path) -> int:
    return len(list((folder / "outbox" / SLUG).glob("*.eml")))


# Item 1: an outbox run is a rehearsal.

def test_a_rehearsal_never_blocks_the_real_send(smtp_server: FakeSMTP, newsletter_dir: Path,
                                                runner: CliRunner) -> None:
    rehearsal = runner.invoke(app, ["send", SLUG, "--yes"])
    assert rehearsal.exit_code == 0, rehearsal.output
    assert f"Wrote 9 messages to outbox/{SLUG}/; nothing was delivered" in rehearsal.output
    assert "status: ready" in (newsletter_dir / ISSUE).read_text()
    status = runner.invoke(app, ["status", SLUG])
    assert "sent          0" in status.output and "not yet sent  9 of 9" in status.output
    assert "delivered to nobody" in status.output
    env = {"NEWSLETTER_SMTP__HOST": "127.0.0.1", "NEWSLETTER_SMTP__PORT": str(smtp_server.port),
           "NEWSLETTER_SMTP__SECURITY": "none"}
    real = runner.invoke(app, ["send", SLUG, "--provider", "smtp", "--yes"], env=env)
    assert real.exit_code == 0, real.output
    assert "Sent 9, skipped 0 (already sent), failed 0, in doubt 0" in real.output
    assert sorted(smtp_server.handler.delivered_to()) == sorted(ACTIVE)
    assert "status: sent" in (newsletter_dir / ISSUE).read_text()
    again = runner.invoke(app, ["send", SLUG, "--yes"])  # a rehearsal after the real send: its own record
    assert again.exit_code == 0 and "Nothing to write: 9 messages are in" in again.output


def test_outbox_runs_an_older_version_recorded_in_the_real_ledger_do_not_count(
        smtp_env: FakeSMTP, newsletter_dir: Path, runner: CliRunner) -> None:
    ledger = newsletter_dir / "sends" / f"{SLUG}.jsonl"
    ledger.parent.mkdir()
    ledger.write_text("\n".join(json.dumps(r) for r in (
        {"event": "run", "run": "old", "at": "2026-11-23T20:00:00Z", "provider": "outbox", "issue": SLUG},
        {"event": "pending", "run": "old", "batch": 1, "at": "", "to": ACTIVE},
        {"event": "sent", "run": "old", "batch": 1, "at": "", "to": ACTIVE})) + "\n")
    status = runner.invoke(app, ["status", SLUG])
    assert "sent          0" in status.output and "outbox" not in status.output.split("not yet sent")[1]
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 0, result.output
    assert "Sent 9, skipped 0" in result.output and sorted(smtp_env.handler.delivered_to()) == sorted(ACTIVE)


def test_a_rehearsal_resumes_and_rewrites_a_file_left_in_doubt(newsletter_dir: Path, runner: CliRunner) -> None:
    first = runner.invoke(app, ["send", SLUG, "--limit", "3", "--yes"])
    assert first.exit_code == 0 and eml_count(newsletter_dir) == 3
    ledger = newsletter_dir / "outbox" / SLUG / ".ledger.jsonl"
    with open(ledger, "a") as fh:  # killed while writing the 4th: pending, file never written
        fh.write(json.dumps({"event": "pending", "run": "x", "batch": 1, "at": "", "to": [ACTIVE[3]]}) + "\n")
    rest = runner.invoke(app, ["send", SLUG, "--yes"])
    assert rest.exit_code == 0, rest.output
    assert f"Wrote 6 messages to outbox/{SLUG}/ (3 there already)" in rest.output
    assert eml_count(newsletter_dir) == 9 and not (newsletter_dir / "sends").exists()


def test_the_readme_quick_start_leaves_git_status_clean(tmp_path: Path) -> None:
    repo = copy_newsletter(ROOT, tmp_path / "repo", subscribers=False)
    shutil.copy(ROOT / "subscribers.example.csv", repo / "subscribers.example.csv")
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "seed"], check=True)
    result = CliRunner().invoke(app, ["send", SLUG, "--subscribers", str(repo / "subscribers.example.csv"),
                                      "--yes", "--config", str(repo / "newsletter.toml")])
    assert result.exit_code == 0, result.output
    assert len(list((repo / "outbox" / SLUG).glob("*.eml"))) == 9
    status = subprocess.run([*git, "status", "--porcelain"], check=True, capture_output=True, text=True)
    assert status.stdout == ""


# Item 6: a rerun after a send that failed everyone exits non-zero, like the send.

def test_a_rerun_after_everyone_failed_exits_non_zero(smtp_env: FakeSMTP, runner: CliRunner) -> None:
    smtp_env.handler.refuse = set(ACTIVE)
    first = runner.invoke(app, ["send", SLUG, "--yes"])
    assert first.exit_code == 1 and "failed 9" in first.output
    rerun = runner.invoke(app, ["send", SLUG, "--yes"])
    assert rerun.exit_code == 1, rerun.output
    assert "Nothing to send: 0 already sent, 9 failed earlier." in rerun.output and "--retry-failed" in rerun.output
    smtp_env.handler.refuse = set()
    retry = runner.invoke(app, ["send", SLUG, "--yes", "--retry-failed"])
    assert retry.exit_code == 0 and "Sent 9" in retry.output


# Item 3: one recipient's message that cannot be built fails that recipient; the rest go out.

def refuse_building_for(monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    build = MessageFactory.build

    def failing(self: MessageFactory, recipient: object) -> tuple[bytes, str]:
        if getattr(recipient, "email", "") == address:
            raise RecipientError(f"{address}: cannot be put in a header")
        return build(self, recipient)  # type: ignore[arg-type]

    monkeypatch.setattr(MessageFactory, "build", failing)


def test_the_outbox_fails_only_the_recipient_whose_message_cannot_be_built(
        newsletter_dir: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_building_for(monkeypatch, "marek@example.net")
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Wrote 8 messages" in result.output and "1 failed" in result.output
    assert "marek@example.net: marek@example.net: cannot be put in a header" in result.output
    assert eml_count(newsletter_dir) == 8


def test_a_recipient_error_a_provider_lets_out_fails_only_that_recipient(
        smtp_env: FakeSMTP, newsletter_dir: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    from newsletter.providers.smtp import SMTPProvider

    deliver = SMTPProvider.deliver

    def leaky(self: SMTPProvider, letter: Letter, batch: Sequence[Outgoing], report: Report) -> None:
        if any(o.recipient.email == "marek@example.net" for o in batch):
            raise RecipientError("no way to carry this address")
        deliver(self, letter, batch, report)

    monkeypatch.setattr(SMTPProvider, "deliver", leaky)
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Sent 8, skipped 0 (already sent), failed 1, in doubt 0" in result.output
    assert "marek@example.net: no way to carry this address" in result.output
    assert sorted(smtp_env.handler.delivered_to()) == sorted(a for a in ACTIVE if a != "marek@example.net")


def test_resend_pending_fails_a_recipient_whose_message_cannot_be_built(
        smtp_env: FakeSMTP, newsletter_dir: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = newsletter_dir / "sends" / f"{SLUG}.jsonl"
    ledger.parent.mkdir()
    ledger.write_text(json.dumps({"event": "run", "run": "r", "at": "", "provider": "smtp"}) + "\n"
                      + json.dumps({"event": "pending", "run": "r", "batch": 1, "at": "", "to": ACTIVE[:3]}) + "\n")
    refuse_building_for(monkeypatch, ACTIVE[1])
    result = runner.invoke(app, ["send", SLUG, "--yes", "--resend-pending"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Sent 8, skipped 0 (already sent), failed 1, in doubt 0" in result.output
    assert read_ledger(ledger).entries[ACTIVE[1]].state == "failed"


def test_a_bug_building_one_message_leaves_only_that_one_in_doubt(
        smtp_env: FakeSMTP, newsletter_dir: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    build = MessageFactory.build

    def buggy(self: MessageFactory, recipient: object) -> tuple[bytes, str]:
        if getattr(recipient, "email", "") == ACTIVE[3]:
            raise ValueError("a bug")  # not a RecipientError: the send stops with its traceback
        return build(self, recipient)  # type: ignore[arg-type]

    monkeypatch.setattr(MessageFactory, "build", buggy)
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert isinstance(result.exception, ValueError)
    state = read_ledger(newsletter_dir / "sends" / f"{SLUG}.jsonl")
    assert state.emails("pending") == [ACTIVE[3]] and state.emails("sent") == ACTIVE[:3]
    assert len(state.entries) == 4  # everyone after it: not sent yet, not in doubt
    monkeypatch.setattr(MessageFactory, "build", build)
    rerun = runner.invoke(app, ["send", SLUG, "--yes"])
    assert "Sent 5, skipped 3 (already sent), failed 0, in doubt 1" in rerun.output


def test_a_non_ascii_address_never_stops_the_rest(newsletter_dir: Path, runner: CliRunner) -> None:
    (newsletter_dir / "subscribers.csv").write_text(
        "email,name,status,tags,created_at,updated_at,source\n"
        "ada@example.com,Ada,active,,,,cli\nδοκιμή@example.com,Δοκιμή,active,,,,cli\nbob@example.com,Bob,active,,,,cli\n",
        encoding="utf-8")
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    names = sorted(p.name for p in (newsletter_dir / "outbox" / SLUG).glob("*.eml"))
    assert {"00001-ada@example.com.eml", "00003-bob@example.com.eml"} <= set(names)
    assert read_ledger(newsletter_dir / "outbox" / SLUG / ".ledger.jsonl", rehearsal=True).counts()["pending"] == 0


# The ledger's key is the list's "same address" key.

@pytest.mark.parametrize(("one", "other"), [
    ("Ada@Example.COM", " ada@example.com"),
    ("Ada@Bücher.de", "ada@xn--bcher-kva.de"),
    ("Zoe\u0301@example.com", "zoé@example.com"),  # NFD and NFC
])
def test_one_address_has_one_ledger_key(one: str, other: str) -> None:
    assert email_key(one.strip()) == email_key(other.strip())


# Item 16: a corrupted ledger line is one clear error.

@pytest.mark.parametrize("line", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"event": "sent", "to": ' + b"[" * 100_000,
    b"\xff\xfe not utf-8",
    b'{"event": "run", "run": "r", "send_at": "tomorrow"}',
])
def test_a_corrupted_ledger_line_is_one_error_with_file_and_line(
        line: bytes, newsletter_dir: Path, runner: CliRunner) -> None:
    ledger = newsletter_dir / "sends" / f"{SLUG}.jsonl"
    ledger.parent.mkdir()
    ledger.write_bytes(json.dumps({"event": "run", "run": "r", "at": "", "provider": "smtp"}).encode() + b"\n"
                       + line + b"\n" + json.dumps({"event": "sent", "run": "r", "to": ["a@x.org"]}).encode() + b"\n")
    for command in (["status", SLUG], ["send", SLUG, "--yes", "--provider", "smtp"]):
        error = one_error_line(runner.invoke(app, command))
        assert f"{Path('sends') / (SLUG + '.jsonl')}:2: " in error, error
