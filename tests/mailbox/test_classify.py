"""Recognising what the return mailbox holds: DSNs, non-standard bounces, ARF complaints, mailto unsubscribes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.mailbox.classify import Kind, classify
from tests.mailbox import samples

UNSUB = "unsubscribe@haileyscomet.example.com"


def test_a_postfix_dsn_is_a_permanent_bounce_of_its_final_recipient() -> None:
    found = classify(samples.postfix_dsn())
    assert found.kind is Kind.BOUNCE
    [failure] = found.failures
    assert (failure.address, failure.permanent, failure.status) == ("ada.lovelace@example.com", True, "5.1.1")
    assert "User unknown" in failure.diagnostic
    assert found.original_id == samples.NEWSLETTER_ID  # from the returned headers: names the send
    assert found.subject == "Undelivered Mail Returned to Sender"
    assert found.date is not None and found.date.year == 2026
    assert samples.RETURN_PATH in found.delivered_to


def test_a_4xx_dsn_is_a_temporary_failure_and_a_delayed_one_too() -> None:
    failed = classify(samples.postfix_dsn(status="4.2.2")).failures[0]
    assert (failed.permanent, failed.status) == (False, "4.2.2")
    delayed = classify(samples.postfix_dsn(status="5.0.0", action="delayed")).failures[0]
    assert delayed.permanent is False


def test_a_success_dsn_is_not_a_bounce() -> None:
    found = classify(samples.postfix_dsn(status="2.0.0", action="delivered"))
    assert found.kind is Kind.OTHER


def test_an_exim_bounce_is_read_by_flufl_bounce() -> None:
    found = classify(samples.exim_failure())
    assert found.kind is Kind.BOUNCE
    assert [f.address for f in found.failures] == ["grace.hopper@example.org"]
    assert found.failures[0].permanent
    assert found.original_id == samples.NEWSLETTER_ID  # quoted in the returned copy


def test_an_arf_abuse_report_is_a_complaint_about_the_original_recipient() -> None:
    found = classify(samples.arf())
    assert found.kind is Kind.COMPLAINT
    assert found.failures[0].address == "marek@example.net"
    assert found.original_id == samples.NEWSLETTER_ID
    assert samples.RETURN_PATH in found.delivered_to  # the Return-Path of the original: a VERP address


def test_a_feedback_report_that_is_not_abuse_is_left_alone() -> None:
    assert classify(samples.arf(feedback_type="not-spam")).kind is Kind.OTHER


def test_an_auto_reply_is_never_a_bounce() -> None:
    found = classify(samples.auto_reply())
    assert found.kind is Kind.OTHER
    assert "auto-reply" in found.why


@pytest.mark.parametrize(("subject", "body"), [("unsubscribe", ""), ("Re: Unsubscribe me", ""),
                                               ("please", "Unsubscribe\n\n-- \nAmira")])
def test_a_mail_to_the_unsubscribe_address_is_an_unsubscribe_of_its_sender(subject: str, body: str) -> None:
    found = classify(samples.unsubscribe_mail(subject=subject, body=body), UNSUB)
    assert found.kind is Kind.UNSUBSCRIBE
    assert found.failures[0].address == "amira.haddad@example.com"


def test_a_mail_to_the_unsubscribe_address_must_say_so() -> None:
    mail = samples.unsubscribe_mail(subject="Loved the essay", body="Thank you!\n> unsubscribe link below")
    assert classify(mail, UNSUB).kind is Kind.OTHER


def test_unsubscribe_mail_to_another_address_or_without_the_setting_is_left_alone() -> None:
    assert classify(samples.unsubscribe_mail(to="hailey@haileyscomet.example.com"), UNSUB).kind is Kind.OTHER
    assert classify(samples.unsubscribe_mail(), "").kind is Kind.OTHER


def test_the_same_message_has_the_same_fingerprint_and_another_one_another() -> None:
    one = classify(samples.postfix_dsn()).fingerprint
    assert classify(samples.postfix_dsn()).fingerprint == one
    assert classify(samples.postfix_dsn(message_id="<other@mx>")).fingerprint != one


@pytest.mark.parametrize("raw", [b"", b"\x00\xff\xfe garbage", b"Subject: =?utf-8?q?broken\r\n\r\n",
                                 b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\nno parts",
                                 b"Content-Type: multipart/report; report-type=feedback-report; boundary=x\r\n\r\n"
                                 b"--x\r\nContent-Type: message/feedback-report\r\n\r\n\r\n--x--\r\n",
                                 b"From: MAILER-DAEMON@x\r\nSubject: Undeliverable\r\nDate: not a date\r\n\r\n?"])
def test_a_malformed_message_never_raises(raw: bytes) -> None:
    found = classify(raw, UNSUB)
    assert found.kind in (Kind.OTHER, Kind.BOUNCE)
    assert all(f.address == "" for f in found.failures)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_classify_without_an_exception(raw: bytes) -> None:
    classify(b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n" + raw, UNSUB)
    classify(raw, UNSUB)


FIXTURES = __import__("pathlib").Path(__file__).resolve().parent.parent / "fixtures" / "mailbox"
EXPECTED = {  # file -> (kind, address the report names, permanent)
    "postfix-user-unknown.eml": (Kind.BOUNCE, "marek@example.net", True),
    "postfix-delayed.eml": (Kind.BOUNCE, "sofia.ruiz@example.org", False),
    "exim-mailbox-unavailable.eml": (Kind.BOUNCE, "lena.fischer@example.de", True),
    "gmail-no-such-user.eml": (Kind.BOUNCE, "amira.haddad@example.com", True),
    "microsoft365-recipient-not-found.eml": (Kind.BOUNCE, "noah.b@example.com", True),
    "amazon-ses-bounce.eml": (Kind.BOUNCE, "priya.nair@example.in", True),
    "postfix-not-on-the-list.eml": (Kind.BOUNCE, "stranger@example.com", True),
    "yahoo-arf-complaint.eml": (Kind.COMPLAINT, "redacted@example.com", True),
    "mailto-unsubscribe.eml": (Kind.UNSUBSCRIBE, "grace.hopper@example.org", True),
    "auto-reply-out-of-office.eml": (Kind.OTHER, "", True),
    "malformed.eml": (Kind.OTHER, "", True),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_fixture_mailbox(name: str) -> None:
    kind, address, permanent = EXPECTED[name]
    found = classify((FIXTURES / name).read_bytes().replace(b"\n", b"\r\n"), UNSUB)
    assert found.kind is kind, found.why
    if kind is not Kind.OTHER:
        assert [(f.address, f.permanent) for f in found.failures] == [(address, permanent)]
    if kind is Kind.BOUNCE:
        assert found.failures[0].status[:1] == ("5" if permanent else "4")
