"""A 200 from the reader service means the event is on disk, even when the service is killed -9.

The real `newsletter serve` process on 127.0.0.1 gets 200 concurrent RFC 8058 one-click POSTs
(valid tokens of 200 list members); it is killed with SIGKILL in the middle, started again, and
`newsletter subscribers apply` folds the inbox into the list: every request that got a 200 is
applied, none is applied twice, and the inbox parses. The links are also taken the way a mail
client takes them: from the List-Unsubscribe header of a message `newsletter send` wrote.
"""

from __future__ import annotations

import csv
import email
import email.policy
import email.utils
import http.client
import re
import threading
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.subscribers.inbox import EventType, Inbox
from newsletter.subscribers.schema import COLUMNS, email_key
from newsletter.tokens import Tokens
from tests.web.running import SECRET, Service, unsubscribe_token

MEMBERS = [f"reader{n:03d}@example.com" for n in range(200)]
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SLUG = "the-fear-of-entering-the-room"


def reader_id(address: str) -> str:
    return Tokens((SECRET,)).reader_id(email_key(address))


def write_members(folder: Path) -> None:
    """subscribers.csv with the 200 MEMBERS, all active."""
    with open(folder / "subscribers.csv", "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS)
        for address in MEMBERS:
            out.writerow([address, "", "active", "", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "cli"])


def statuses(folder: Path) -> dict[str, tuple[str, str]]:
    """address -> (status, updated_at), as the list on disk says."""
    with open(folder / "subscribers.csv", encoding="utf-8", newline="") as fh:
        return {row["email"]: (row["status"], row["updated_at"]) for row in csv.DictReader(fh)}


def cli_env(service: Service) -> dict[str, str]:
    return {name: value for name, value in service.env.items() if name.startswith("NEWSLETTER_")}


def apply(runner: CliRunner, service: Service) -> str:
    result = runner.invoke(app, ["subscribers", "apply"], env=cli_env(service))
    assert result.exit_code == 0, result.output
    return result.output


def one_click(port: int, path: str) -> int:
    """One RFC 8058 POST on its own connection; the status, or 0 if no whole answer came back."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("POST", path, body=ONE_CLICK, headers=FORM)
        answer = conn.getresponse()
        answer.read()
        return answer.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def journal(folder: Path) -> list[str]:
    """The reader ids of every unsubscribe event in the inbox (parsing the whole journal)."""
    events, _ = Inbox(folder / "inbox").read()
    return [e.reader for e in events if e.type is EventType.UNSUBSCRIBED]


@pytest.fixture
def members(newsletter_dir: Path) -> Iterator[Service]:
    write_members(newsletter_dir)
    service = Service(newsletter_dir)
    try:
        yield service.start()
    finally:
        service.stop()


def test_every_200_survives_a_kill_9_and_is_applied_once(members: Service, runner: CliRunner) -> None:
    service, folder = members, members.folder
    prefix = service.url.removeprefix(f"http://127.0.0.1:{service.port}")
    answers: dict[str, int] = {}
    oks = threading.Semaphore(0)
    start = threading.Barrier(len(MEMBERS) + 1)

    def post(address: str) -> None:
        start.wait()
        status = answers[address] = one_click(service.port, prefix + "unsubscribe/" + unsubscribe_token(address))
        if status == 200:
            oks.release()

    with ThreadPoolExecutor(max_workers=len(MEMBERS)) as pool:
        for address in MEMBERS:
            pool.submit(post, address)
        start.wait()
        for _ in range(30):  # kill once 30 readers have their 200, with the rest in flight
            assert oks.acquire(timeout=30), "the service answered fewer than 30 one-click POSTs"
        service.kill()
    got_200 = {a for a, status in answers.items() if status == 200}
    failed = set(MEMBERS) - got_200
    assert failed, "every request finished before the kill: the kill did not come in the middle"
    assert {answers[a] for a in failed} == {0}, "a request got an answer other than 200"

    recorded = journal(folder)  # parses: a torn last line is not an event
    assert len(recorded) == len(set(recorded)), "an unsubscribe was recorded twice"
    ids = {reader_id(a): a for a in MEMBERS}
    assert {ids[r] for r in recorded} >= got_200, "a reader got a 200 but the event is not on disk"

    service.start()  # the restarted service appends after whatever the kill left
    retry = next(a for a in sorted(failed) if reader_id(a) not in recorded)  # a mail client retries
    assert one_click(service.port, prefix + "unsubscribe/" + unsubscribe_token(retry)) == 200
    recorded = journal(folder)
    assert len(recorded) == len(set(recorded)) and reader_id(retry) in recorded

    apply(runner, service)
    after = statuses(folder)
    left = {a for a, (status, _) in after.items() if status == "unsubscribed"}
    assert left == {ids[r] for r in recorded}
    assert left >= got_200 | {retry}
    assert {status for a, (status, _) in after.items() if a not in left} == {"active"}
    apply(runner, service)
    assert statuses(folder) == after, "a second apply changed the list: an event was applied twice"


def list_unsubscribe_urls(folder: Path) -> dict[str, str]:
    """recipient -> the http(s) URL in List-Unsubscribe of each message the outbox holds."""
    found = {}
    for path in sorted((folder / "outbox" / SLUG).glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        urls = re.findall(r"<(https?://[^>]+)>", str(message["List-Unsubscribe"]))
        assert len(urls) == 1, message["List-Unsubscribe"]
        found[email.utils.parseaddr(str(message["To"]))[1]] = urls[0]
    return found


def test_one_click_to_the_url_in_a_sent_message_unsubscribes(newsletter_dir: Path, runner: CliRunner) -> None:
    with Service(newsletter_dir) as service:
        sent = runner.invoke(app, ["send", SLUG, "--yes"], env=cli_env(service))
        assert sent.exit_code == 0, sent.output
        links = list_unsubscribe_urls(newsletter_dir)
        assert len(links) >= 3
        assert all(url.startswith(service.url + "unsubscribe/") for url in links.values())
        before = statuses(newsletter_dir)
        leaving = [address for address in sorted(links) if address in before][:2]
        for address in leaving:
            request = urllib.request.Request(links[address], data=ONE_CLICK, headers=FORM, method="POST")
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.status == 200
        forged = links[leaving[0]][:-3] + "xyz"  # no oracle: a 200 too, and nothing recorded
        request = urllib.request.Request(forged, data=ONE_CLICK, headers=FORM, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
        apply(runner, service)
    after = statuses(newsletter_dir)
    assert {a for a in after if after[a][0] != before[a][0]} == set(leaving)
    assert {after[a][0] for a in leaving} == {"unsubscribed"}
    assert len(journal(newsletter_dir)) == 2
    assert SECRET not in service.output()
