"""SendGrid's signed Event Webhook: only SendGrid's own fresh posts are recorded, each event once.

Bodies are signed the way SendGrid signs them (base64 DER ECDSA P-256 over SHA-256 of the
timestamp followed by the raw body), with a key pair the test makes with `cryptography`.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.errors import ConfigError
from newsletter.subscribers.inbox import EventType, Inbox
from newsletter.subscribers.provider_events import DeliveryEvents
from newsletter.subscribers.schema import COLUMNS
from newsletter.web.sendgrid_events import MAX_AGE, MAX_BODY_BYTES, check_public_key, handle
from tests.web.running import Service

NOW = 1_780_000_000.0
SLUG = "the-fear-of-entering-the-room"
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


def public_der(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    """The public half as SendGrid shows it: base64 DER SubjectPublicKeyInfo."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC = public_der(KEY)


def sign(body: bytes, timestamp: str, key: ec.EllipticCurvePrivateKey = KEY) -> dict[str, str]:
    """The headers SendGrid sends with this body."""
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE: base64.b64encode(signature).decode(), TIMESTAMP: timestamp}


def event(kind: str, sg_id: str, email: str = "ada@example.com", **extra: Any) -> dict[str, Any]:
    """One SendGrid event as the webhook carries it (custom args as top-level keys)."""
    return {"email": email, "event": kind, "timestamp": int(NOW) - 30, "sg_event_id": sg_id,
            "sg_message_id": f"msg{sg_id}.filter0001.1.0", "newsletter_issue": SLUG, **extra}


def body_of(*events: dict[str, Any]) -> bytes:
    return json.dumps(list(events), indent=1).encode()


class Hook:
    """handle() with one inbox and one store, as one service process holds them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.inbox = Inbox(folder)
        self.store = DeliveryEvents(folder)

    def post(self, raw: bytes, headers: dict[str, str] | None = None, *, now: float = NOW,
             key: str = PUBLIC) -> tuple[int, str]:
        headers = sign(raw, str(int(now))) if headers is None else headers
        return handle(raw, headers, public_key=key, inbox=self.inbox, store=self.store, now=now)

    def inbox_records(self) -> list[dict[str, Any]]:
        return [e.record() for e, _ in Inbox(self.folder).scan()]

    def stored(self, issue: str = SLUG) -> list[dict[str, Any]]:
        return DeliveryEvents(self.folder).read(issue)

    def nothing_recorded(self) -> bool:
        return not (self.folder / "events.jsonl").exists() and not (self.folder / "sendgrid").exists()


@pytest.fixture
def hook(tmp_path: Path) -> Hook:
    return Hook(tmp_path / "inbox")


def test_a_signed_batch_reaches_the_inbox_and_the_store(hook: Hook) -> None:
    raw = body_of(
        event("processed", "e1"),
        event("delivered", "e2"),
        event("open", "e3", sg_machine_open=True),
        event("click", "e4", url="https://haileyscomet.example.com/a"),
        event("bounce", "e5", email="gone@example.com", type="bounce", status="5.1.1",
              reason="550 5.1.1 no such user", bounce_classification="Invalid Address"),
        event("bounce", "e6", email="full@example.com", type="blocked", status="4.2.2", reason="mailbox full"),
        event("dropped", "e7", email="old@example.com", reason="Bounced Address"),
        event("dropped", "e8", email="bad@example.com", reason="Invalid"),
        event("dropped", "e9", email="big@example.com", reason="Recipient List over Package Quota"),
        event("spamreport", "e10", email="angry@example.com"),
        event("unsubscribe", "e11", email="bye@example.com"),
        event("group_unsubscribe", "e12", email="grp@example.com", asm_group_id=42),
        event("deferred", "e13", reason="try later"),
    )
    assert hook.post(raw) == (200, "ok")
    got = {(r["type"], r["email"]) for r in hook.inbox_records()}
    assert got == {
        (EventType.BOUNCED, "gone@example.com"), (EventType.BOUNCED, "old@example.com"),
        (EventType.BOUNCED, "bad@example.com"), (EventType.COMPLAINED, "angry@example.com"),
        (EventType.UNSUBSCRIBED, "bye@example.com"), (EventType.UNSUBSCRIBED, "grp@example.com"),
    }
    records = hook.inbox_records()
    assert all(r["source"] == "sendgrid" and r["issue"] == SLUG for r in records)
    bounce = next(r for r in records if r["email"] == "gone@example.com")
    assert bounce["sg_event_id"] == "e5" and "550 5.1.1 no such user" in bounce["detail"]
    assert "group 42" in next(r for r in records if r["email"] == "grp@example.com")["detail"]
    stored = {r["sg_event_id"]: r for r in hook.stored()}
    assert set(stored) == {f"e{n}" for n in range(1, 14)}
    assert stored["e3"]["sg_machine_open"] is True
    assert stored["e4"]["url"] == "https://haileyscomet.example.com/a"
    assert stored["e6"]["type"] == "blocked" and stored["e1"]["sg_message_id"].startswith("msge1.")


def test_an_event_without_an_issue_of_ours_goes_to_the_unassigned_file(hook: Hook) -> None:
    raw = body_of(event("delivered", "u1", newsletter_issue="../../etc/passwd"),
                  {k: v for k, v in event("open", "u2").items() if k != "newsletter_issue"})
    assert hook.post(raw)[0] == 200
    assert {r["sg_event_id"] for r in hook.stored("")} == {"u1", "u2"}
    assert sorted(p.name for p in (hook.folder / "sendgrid").iterdir()) == ["_unassigned.jsonl"]


@pytest.mark.parametrize("case", ["missing", "no-timestamp", "forged", "other-key", "garbage", "not-base64"])
def test_a_post_that_is_not_signed_by_the_key_is_refused(hook: Hook, case: str) -> None:
    raw = body_of(event("spamreport", "f1"))
    stamp = str(int(NOW))
    headers = {
        "missing": {},
        "no-timestamp": {SIGNATURE: sign(raw, stamp)[SIGNATURE]},
        "forged": {SIGNATURE: base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode(), TIMESTAMP: stamp},
        "other-key": sign(raw, stamp, ec.generate_private_key(ec.SECP256R1())),
        "garbage": {SIGNATURE: "", TIMESTAMP: "yesterday"},
        "not-base64": {SIGNATURE: "!!!not base64!!!", TIMESTAMP: stamp},
    }[case]
    status, text = hook.post(raw, headers)
    assert status == 403, text
    assert hook.nothing_recorded()


def test_a_changed_body_or_timestamp_breaks_the_signature(hook: Hook) -> None:
    raw = body_of(event("unsubscribe", "t1", email="ada@example.com"))
    headers = sign(raw, str(int(NOW)))
    tampered = raw.replace(b"ada@example.com", b"bob@example.com")
    assert hook.post(tampered, headers)[0] == 403
    reserialised = json.dumps(json.loads(raw)).encode()  # same events, other bytes: not what was signed
    assert reserialised != raw and hook.post(reserialised, headers)[0] == 403
    assert hook.post(raw, {**headers, TIMESTAMP: str(int(NOW) - 1)})[0] == 403
    assert hook.nothing_recorded()
    assert hook.post(raw, headers)[0] == 200


@pytest.mark.parametrize("offset", [-MAX_AGE - 1, -10 * 24 * 3600, 3600])
def test_an_old_or_future_signature_is_refused(hook: Hook, offset: int) -> None:
    raw = body_of(event("spamreport", "o1"))
    status, text = hook.post(raw, sign(raw, str(int(NOW) + offset)))
    assert status == 403 and "timestamp" in text
    assert hook.nothing_recorded()


def test_a_signature_within_ten_minutes_is_accepted(hook: Hook) -> None:
    raw = body_of(event("spamreport", "o2"))
    assert hook.post(raw, sign(raw, str(int(NOW) - MAX_AGE + 5)))[0] == 200


def test_a_replayed_event_is_recorded_once_also_after_a_restart(hook: Hook) -> None:
    first = body_of(event("bounce", "r1", type="bounce"), event("delivered", "r2"))
    assert hook.post(first)[0] == 200
    assert hook.post(first, now=NOW + 60)[0] == 200  # SendGrid retries, signing again
    again = Hook(hook.folder)  # the service restarted: memory comes back from the files
    mixed = body_of(event("bounce", "r1", type="bounce"), event("delivered", "r2"), event("open", "r3"),
                    event("open", "r3"))
    assert again.post(mixed, now=NOW + 120)[0] == 200
    assert [r["sg_event_id"] for r in again.inbox_records()] == ["r1"]
    lines = (hook.folder / "sendgrid" / f"{SLUG}.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["sg_event_id"] for line in lines) == ["r1", "r2", "r3"]


def test_an_event_in_the_store_but_not_yet_in_the_inbox_still_reaches_the_inbox(hook: Hook) -> None:
    """A crash between the two writes: the retry completes what is missing and repeats nothing."""
    raw = body_of(event("spamreport", "c1"))
    hook.store.append({SLUG: [{"sg_event_id": "c1", "event": "spamreport", "email": "ada@example.com",
                               "timestamp": 0, "received": int(NOW)}]}, NOW)
    restarted = Hook(hook.folder)
    assert restarted.post(raw)[0] == 200
    assert [r["type"] for r in restarted.inbox_records()] == [EventType.COMPLAINED]
    assert len((hook.folder / "sendgrid" / f"{SLUG}.jsonl").read_text().splitlines()) == 1


def test_concurrent_retries_record_each_event_once(hook: Hook) -> None:
    raw = body_of(*(event("unsubscribe", f"k{n}", email=f"r{n}@example.com") for n in range(50)))
    answers: list[int] = []
    threads = [threading.Thread(target=lambda: answers.append(hook.post(raw)[0])) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200] * 8
    assert sorted(r["sg_event_id"] for r in hook.inbox_records()) == sorted(f"k{n}" for n in range(50))
    assert len(hook.stored()) == 50


def test_a_torn_last_line_is_skipped_and_the_next_batch_starts_on_its_own_line(hook: Hook) -> None:
    assert hook.post(body_of(event("delivered", "w1")))[0] == 200
    path = hook.folder / "sendgrid" / f"{SLUG}.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'{"sg_event_id":"w2","event":"deliv')  # a crash in the middle of a write
    again = Hook(hook.folder)
    assert again.post(body_of(event("delivered", "w2")), now=NOW + 1)[0] == 200
    assert [r["sg_event_id"] for r in again.stored()] == ["w1", "w2"]


@pytest.mark.parametrize("raw", [b"{not json", b'{"event": "bounce"}', b"[" * 100_000 + b"]" * 100_000,
                                 "[\"caf\u00e9\"]".encode("latin-1")])
def test_a_signed_body_that_is_not_an_event_array_is_refused_or_skipped(hook: Hook, raw: bytes) -> None:
    status, _ = hook.post(raw)
    assert status in (400, 403)
    assert hook.nothing_recorded()


def test_malformed_events_in_a_signed_batch_are_skipped_and_the_rest_recorded(hook: Hook) -> None:
    raw = body_of(
        event("bounce", "m1", type="bounce"),
        {"event": "bounce", "type": "bounce", "email": "x@example.com"},  # no sg_event_id
        event("bounce", "m2", email="no at sign", type="bounce"),
        event("bounce", "m3", email="a\r\nb@example.com", type="bounce"),
        event("bounce", 7, type="bounce"),  # type: ignore[arg-type]
        event("dropped", "m4", reason=["Bounced Address"]),
        event("open", "m5", url="x" * 100_000, reason="a\x00b\nc"),
    )
    # JSON values that are not objects at all
    raw = raw[:-2] + b', "text", 3, null, [], {"event": null}]'
    assert hook.post(raw)[0] == 200
    assert [r["sg_event_id"] for r in hook.inbox_records()] == ["m1"]
    stored = {r["sg_event_id"]: r for r in hook.stored()}
    assert set(stored) == {"m1", "m4", "m5"}
    assert len(stored["m5"]["url"]) <= 1000 and stored["m5"]["reason"] == "a b c"


def test_a_huge_body_is_refused_before_anything_else(hook: Hook) -> None:
    raw = b"[" + b" " * MAX_BODY_BYTES + b"]"
    assert hook.post(raw)[0] == 413
    assert hook.nothing_recorded()


def test_without_a_key_the_webhook_asks_sendgrid_to_come_back(hook: Hook) -> None:
    raw = body_of(event("spamreport", "n1"))
    assert hook.post(raw, key="")[0] == 503
    assert hook.nothing_recorded()


def test_a_full_disk_is_a_503_and_the_retry_records_everything(hook: Hook, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = body_of(event("spamreport", "d1"), event("delivered", "d2"))
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    assert hook.post(raw)[0] == 503
    monkeypatch.setattr(os, "write", real_write)
    assert hook.post(raw, now=NOW + 30)[0] == 200
    assert [r["sg_event_id"] for r in hook.inbox_records()] == ["d1"]
    assert {r["sg_event_id"] for r in hook.stored()} == {"d1", "d2"}


def test_a_key_pasted_as_pem_works_and_a_wrong_key_is_a_config_error() -> None:
    der = base64.b64decode(PUBLIC)
    pem = "-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(der).decode() + "-----END PUBLIC KEY-----\n"
    check_public_key(PUBLIC)
    check_public_key(pem)
    for wrong in ("not a key", base64.b64encode(b"0123456789").decode(),
                  public_der(rsa.generate_private_key(public_exponent=65537, key_size=2048))):
        with pytest.raises(ConfigError) as err:
            check_public_key(wrong)
        assert "SENDGRID_WEBHOOK_PUBLIC_KEY" in str(err.value)
    raw = body_of(event("spamreport", "p1"))
    status = handle(raw, sign(raw, str(int(NOW))), public_key=pem, inbox=Inbox(Path(os.devnull)),
                    store=DeliveryEvents(Path(os.devnull)), now=NOW)[0]
    assert status == 503  # verified; cannot write under /dev/null: SendGrid will retry


def test_the_header_names_are_matched_without_regard_to_case(hook: Hook) -> None:
    raw = body_of(event("spamreport", "h1"))
    headers = {k.lower(): v for k, v in sign(raw, str(int(NOW))).items()}
    assert hook.post(raw, headers)[0] == 200


# The real service ------------------------------------------------------------------------------------


MEMBERS = ["gone@example.com", "angry@example.com", "left@example.com", "kept@example.com"]


def write_members(folder: Path) -> None:
    """subscribers.csv with MEMBERS, all active."""
    with open(folder / "subscribers.csv", "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS)
        for address in MEMBERS:
            out.writerow([address, "", "active", "", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "cli"])


def statuses(folder: Path) -> dict[str, str]:
    with open(folder / "subscribers.csv", encoding="utf-8", newline="") as fh:
        return {row["email"]: row["status"] for row in csv.DictReader(fh)}


def post_to(service: Service, raw: bytes, headers: dict[str, str]) -> int:
    """POST a body to the running service's webhook URL; the status."""
    request = urllib.request.Request(service.url + "webhooks/sendgrid", data=raw, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_the_running_service_records_signed_events_and_apply_marks_the_readers(
        newsletter_dir: Path, runner: CliRunner) -> None:
    write_members(newsletter_dir)
    gone, angry, left, kept = MEMBERS
    raw = body_of(
        event("bounce", "s1", email=gone, type="bounce", status="5.1.1", reason="550 no such user"),
        event("spamreport", "s2", email=angry),
        event("group_unsubscribe", "s3", email=left, asm_group_id=7),
        event("delivered", "s4", email=kept),
        event("open", "s5", email=kept, sg_machine_open=False),
    )
    with Service(newsletter_dir, SENDGRID_WEBHOOK_PUBLIC_KEY=PUBLIC) as service:
        stamp = str(int(time.time()))
        assert post_to(service, raw.replace(b"s4", b"s9"), sign(raw, stamp)) == 403  # tampered
        assert post_to(service, raw, sign(raw, str(int(time.time()) - 3600))) == 403  # stale
        assert post_to(service, raw, {}) == 403
        assert not (newsletter_dir / "inbox" / "sendgrid").exists()
        assert post_to(service, raw, sign(raw, stamp)) == 200
        assert post_to(service, raw, sign(raw, stamp)) == 200  # SendGrid's retry: nothing twice
        assert PUBLIC not in service.output()
    stored = DeliveryEvents(newsletter_dir / "inbox").read(SLUG)
    assert [r["sg_event_id"] for r in stored] == ["s1", "s2", "s3", "s4", "s5"]
    env = {k: v for k, v in service.env.items() if k.startswith("NEWSLETTER_")}
    result = runner.invoke(app, ["subscribers", "apply"], env=env)
    assert result.exit_code == 0, result.output
    after = statuses(newsletter_dir)
    assert (after[gone], after[angry], after[left], after[kept]) == (
        "bounced", "complained", "unsubscribed", "active")
    sendgrid_events = [e for e, _ in Inbox(newsletter_dir / "inbox").scan() if e.source == "sendgrid"]
    assert len(sendgrid_events) == 3
