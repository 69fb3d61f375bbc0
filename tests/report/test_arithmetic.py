"""The report's arithmetic: rates per delivered message, day buckets, deduplication, the join."""

from __future__ import annotations

from newsletter.report import LedgerCounts, Outcomes, category_for
from newsletter.report.arithmetic import day_stats, fold_days, fold_events, fold_inbox, rates, warnings

IDS = {"a@example.com": "msgA", "b@example.com": "msgA", "c@example.com": "msgB"}


def ev(event_id: str, kind: str, email: str, message: str = "msgA", **extra: object) -> dict[str, object]:
    return {"sg_event_id": event_id, "event": kind, "email": email, "sg_message_id": f"{message}.filter0001.1.0",
            "timestamp": 1, "received": 1, **extra}


def ledger(handed_over: int) -> LedgerCounts:
    return LedgerCounts("sendgrid", "2026-11-23T10:00:00Z", handed_over, handed_over, 0, 0, 0)


def test_each_reader_counts_once_and_a_repeated_event_once() -> None:
    records = [ev("1", "delivered", "a@example.com"), ev("1", "delivered", "a@example.com"),
               ev("2", "delivered", "A@Example.com"), ev("3", "delivered", "c@example.com", "msgB"),
               ev("4", "click", "a@example.com", url="https://x.example/1"),
               ev("5", "click", "a@example.com", url="https://x.example/1"),
               ev("6", "click", "c@example.com", "msgB", url="https://x.example/2"),
               ev("7", "click", "b@example.com", url="https://x.example/2")]
    out = fold_events(records, IDS, opens_tracked=False)
    assert out.delivered == 2 and out.unique_clicks == 3
    assert [(link.url, link.readers) for link in out.top_links] == [("https://x.example/2", 2),
                                                                    ("https://x.example/1", 1)]


def test_events_of_other_messages_are_left_out_and_counted_as_ignored() -> None:
    records = [ev("1", "delivered", "a@example.com"), ev("2", "delivered", "tester@example.com", "msgTEST"),
               {"sg_event_id": "3", "event": "delivered", "email": "c@example.com"},  # no message id: by address
               {"sg_event_id": "4", "event": "delivered", "email": "stranger@example.com"}]
    out = fold_events(records, IDS, opens_tracked=False)
    assert out.delivered == 2 and out.ignored == 2


def test_bounces_are_hard_blocks_soft_with_reasons() -> None:
    records = [ev("1", "bounce", "a@example.com", type="bounce", reason="550 5.1.1 user unknown"),
               ev("2", "bounce", "b@example.com", type="blocked", reason="421 try later"),
               ev("3", "dropped", "c@example.com", "msgB", reason="Bounced Address")]
    out = fold_events(records, IDS, opens_tracked=False)
    assert (out.bounced_hard, out.bounced_soft, out.dropped) == (1, 1, 1)
    assert {(r.kind, r.reason) for r in out.reasons} == {("hard", "550 5.1.1 user unknown"),
                                                          ("soft", "421 try later"), ("dropped", "Bounced Address")}


def test_opens_only_when_tracked_and_machine_opens_left_out() -> None:
    records = [ev("1", "open", "a@example.com"), ev("2", "open", "b@example.com", sg_machine_open=True)]
    assert fold_events(records, IDS, opens_tracked=False).opens is None
    assert fold_events(records, IDS, opens_tracked=True).opens == 1


def test_day_buckets_sum_and_say_unique_is_per_day() -> None:
    days = [day_stats("2026-11-24", {"delivered": 2, "unique_clicks": 1, "unique_opens": 2}),
            day_stats("2026-11-23", {"delivered": 8, "unique_clicks": 1, "bounces": 1, "blocks": 2,
                                     "bounce_drops": 1, "invalid_emails": 1, "opens": 99})]
    out = fold_days(days, opens_tracked=False)
    assert (out.delivered, out.unique_clicks, out.bounced_hard, out.bounced_soft, out.dropped) == (10, 2, 1, 2, 2)
    assert out.unique_per_day and out.opens is None and [d.date for d in out.days] == ["2026-11-23", "2026-11-24"]
    assert fold_days(days, opens_tracked=True).opens == 2


def test_odd_numbers_from_the_api_count_zero() -> None:
    assert day_stats("2026-11-23", {"delivered": "7", "bounces": -3, "blocks": True}).delivered == 0


def test_rates_are_per_delivered_message_and_bounces_per_message_handed_over() -> None:
    r = rates(ledger(1000), Outcomes("sendgrid-events", delivered=800, bounced_hard=30, bounced_soft=10,
                                     spam_reports=2, unsubscribes=4, unique_clicks=80))
    assert r.complaint is not None and r.complaint.value == 2 / 800 and r.complaint.basis == "delivered"
    assert r.click is not None and r.click.value == 0.1
    assert r.hard_bounce is not None and r.hard_bounce.value == 0.03 and r.hard_bounce.basis == "handed over"
    assert r.open is None


def test_without_a_delivered_count_the_base_is_an_upper_bound() -> None:
    r = rates(ledger(100), fold_inbox([("bounced", "a@example.com", "550"), ("bounced", "a@example.com", "550"),
                                       ("complained", "b@example.com", "")]))
    assert r.complaint is not None and (r.complaint.count, r.complaint.base) == (1, 99)
    assert "at most delivered" in r.complaint.basis


def test_nothing_to_divide_by_is_no_rate_not_a_crash() -> None:
    r = rates(ledger(0), Outcomes("sendgrid-stats", delivered=0, spam_reports=0))
    assert r.complaint is not None and r.complaint.value is None and warnings("x", r) == ()


def test_warnings_in_words_near_and_past_gmails_limits_and_past_two_percent_hard_bounces() -> None:
    def said(delivered: int, complaints: int, hard: int) -> str:
        out = Outcomes("sendgrid-events", delivered=delivered, spam_reports=complaints, bounced_hard=hard)
        return " ".join(warnings("Issue", rates(ledger(delivered + hard), out)))

    assert said(10000, 9, 0) == ""
    assert "0.1 %" in said(10000, 10, 0) and "never 0.3 %" in said(10000, 10, 0)
    assert "0.3 % limit" in said(10000, 30, 0)
    assert said(980, 0, 20) == ""  # exactly 2 %: not past it
    assert "past 2 %" in said(970, 0, 30)


def test_category_for_is_within_sendgrids_limits() -> None:
    assert category_for("the-fear-of-entering-the-room") == "issue:the-fear-of-entering-the-room"
    odd = category_for("é\r\n;" + "x" * 400)
    assert len(odd) <= 255 and odd.isascii() and odd.isprintable() and ";" not in odd
