"""Assertions shared by the CLI tests."""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from typer.testing import Result

from newsletter.models import Recipient, SendReport
from newsletter.providers import Letter, Outcome, Outgoing, Provider, Report, State
from newsletter.send.deliver import BatchProgress, Recorder, deliver_all
from newsletter.send.ledger import LedgerWriter, read_ledger


def one_error_line(result: Result) -> str:
    """A user error: exit 1, no traceback, exactly one 'error:' line on stderr; return that line."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def copy_newsletter(source: Path, folder: Path, *, subscribers: bool = True) -> Path:
    """Copy a newsletter (config, issues, templates, the example list) into folder.

    Issues come back as `status: ready` even if a send in the source (the README's quick start)
    marked them sent, so the tests never depend on what was run in the checkout before them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "newsletter.toml", folder / "newsletter.toml")
    shutil.copytree(source / "issues", folder / "issues")
    for issue in (folder / "issues").glob("*.md"):
        text = issue.read_text(encoding="utf-8")
        issue.write_text(re.sub(r"(?m)^status: sent$", "status: ready", text, count=1), encoding="utf-8")
    if (source / "templates").is_dir():
        shutil.copytree(source / "templates", folder / "templates")
    if subscribers:
        shutil.copy(source / "subscribers.example.csv", folder / "subscribers.csv")
    return folder


def deliver_in_slots(provider: Provider, letter: Letter, outs: Sequence[Outgoing], report: Report) -> None:
    """Hand `outs` over as the send loop's window does: one thread per slot, `handoff_size` at a time.

    With concurrency 1 it is a plain deliver() of the whole list, in order, on slot 0. The first
    exception a slot raises is raised here, after every slot has stopped.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    n = provider.concurrency
    if n == 1:
        provider.deliver(letter, outs, report)
        return
    lock = threading.Lock()

    def locked_report(outcome: Outcome) -> None:
        with lock:
            report(outcome)

    def work(slot: int) -> None:
        for out in outs[slot::n]:
            provider.deliver(letter, [out], locked_report, slot=slot)

    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(work, slot) for slot in range(n)]
    for future in futures:
        future.result()


LIST_HEADER = "email,name,status,tags,created_at,updated_at,source\n"


def write_list(folder: Path, n: int) -> list[str]:
    """A subscribers.csv of n active readers in `folder`; their addresses, in order."""
    addresses = [f"reader{i:05d}@example.com" for i in range(n)]
    (folder / "subscribers.csv").write_text(LIST_HEADER + "".join(f"{a},Reader {i},active,,,,cli\n"
                                                                  for i, a in enumerate(addresses)))
    return addresses


SCRIPTED_LETTER = Letter(cast(Any, None), cast(Any, None))  # for a scripted provider, which never reads it


def loop_send(writer: LedgerWriter, provider: Any, emails: list[str], report: SendReport | None = None
              ) -> tuple[SendReport, list[BatchProgress]]:
    """A whole recorded send of `emails` through the send loop, `provider.batch_size` a batch.

    For scripted providers (SCRIPTED_LETTER); `writer` is closed afterwards.
    """
    report, progress = report or SendReport("an-issue", provider.name), []
    writer.run("r1", provider.name, "an-issue")
    try:
        deliver_all(batches_of(emails, provider.batch_size), provider, SCRIPTED_LETTER,
                    Recorder(report, writer, "r1"), progress.append)
    finally:
        writer.close()
    return report, progress


def people(n: int) -> list[str]:
    """n addresses p1@example.com ... pn@example.com."""
    return [f"p{i}@example.com" for i in range(1, n + 1)]


def batches_of(emails: list[str], size: int) -> list[list[Outgoing]]:
    """The addresses as a send's batches of `size`, numbered from 1."""
    outs = [Outgoing(i, Recipient(e)) for i, e in enumerate(emails, start=1)]
    return [outs[i:i + size] for i in range(0, len(outs), size)]


def ledger_states(path: Path) -> dict[str, State]:
    """Each address's latest state in the ledger at path."""
    return {e: x.state for e, x in read_ledger(path).entries.items()}
