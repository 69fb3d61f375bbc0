"""The test server's category statistics speak tsg_stats_v3.json: the query checked, the answer shaped."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.fakes import fixtures
from tests.fakes.fixtures import API_KEY
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.sendgrid_stats import answer_validator, metric_names

sendgrid_server = fixtures.sendgrid_server


def get(fake: FakeSendGrid, path_and_query: str) -> tuple[int, Any]:
    request = urllib.request.Request(fake.url + path_and_query, headers={"Authorization": f"Bearer {API_KEY}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - loopback only
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def stats(sendgrid_server: FakeSendGrid) -> FakeSendGrid:
    sendgrid_server.add_category_stats("2026-11-23", "issue:one", delivered=98, bounces=2, unique_clicks=12)
    sendgrid_server.add_category_stats("2026-11-24", "issue:one", delivered=1, unique_clicks=3, spam_reports=1)
    sendgrid_server.add_category_stats("2026-11-24", "issue:two", delivered=50)
    return sendgrid_server


def test_stats_answer_every_day_of_the_range_for_each_category_asked(stats: FakeSendGrid) -> None:
    status, answer = get(stats, "/v3/categories/stats?start_date=2026-11-22&end_date=2026-11-24"
                                "&categories=issue:one&categories=issue:two")
    assert status == 200
    assert [day["date"] for day in answer] == ["2026-11-22", "2026-11-23", "2026-11-24"]
    first, second = answer[1]["stats"]
    assert (first["type"], first["name"], second["name"]) == ("category", "issue:one", "issue:two")
    assert first["metrics"]["delivered"] == 98 and second["metrics"] == dict.fromkeys(metric_names(), 0)
    assert set(first["metrics"]) == set(metric_names())  # every metric the spec requires
    for day in answer:
        answer_validator().validate(day)
    assert stats.stats_queries[-1][0] == "/v3/categories/stats"


def test_buckets_by_month_sum_the_days(stats: FakeSendGrid) -> None:
    status, answer = get(stats, "/v3/categories/stats?start_date=2026-11-20&end_date=2026-12-02"
                                "&categories=issue:one&aggregated_by=month")
    assert status == 200 and [d["date"] for d in answer] == ["2026-11-20", "2026-12-01"]
    assert answer[0]["stats"][0]["metrics"]["unique_clicks"] == 15


def test_sums_are_sorted_and_paged(stats: FakeSendGrid) -> None:
    status, answer = get(stats, "/v3/categories/stats/sums?start_date=2026-11-01&end_date=2026-11-30")
    assert status == 200 and answer["date"] == "2026-11-01"
    assert [(s["name"], s["metrics"]["delivered"]) for s in answer["stats"]] == [("issue:one", 99), ("issue:two", 50)]
    status, answer = get(stats, "/v3/categories/stats/sums?start_date=2026-11-01&end_date=2026-11-30"
                                "&sort_by_metric=delivered&sort_by_direction=asc&limit=1&offset=0")
    assert [s["name"] for s in answer["stats"]] == ["issue:two"]


@pytest.mark.parametrize(("query", "field"), [
    ("end_date=2026-11-30&categories=a", "start_date"),  # required
    ("start_date=2026-11-01", "categories"),  # required for /stats
    ("start_date=2026-11-1&categories=a", "start_date"),  # YYYY-MM-DD
    ("start_date=2026-02-30&categories=a", "start_date"),
    ("start_date=2026-11-02&end_date=2026-11-01&categories=a", "start_date"),
    ("start_date=2026-11-01&categories=a&aggregated_by=year", "aggregated_by"),  # the enum
    ("start_date=2026-11-01&categories=a&limit=5", "limit"),  # not a parameter of /stats
    ("start_date=2026-11-01&" + "&".join(f"categories=c{i}" for i in range(11)), "categories"),
])
def test_a_query_the_spec_does_not_allow_is_a_400(stats: FakeSendGrid, query: str, field: str) -> None:
    status, answer = get(stats, "/v3/categories/stats?" + query)
    assert status == 400 and answer["errors"][0]["field"] == field


@pytest.mark.parametrize(("query", "field"), [
    ("start_date=2026-11-01&sort_by_metric=nope", "sort_by_metric"),
    ("start_date=2026-11-01&sort_by_direction=up", "sort_by_direction"),
    ("start_date=2026-11-01&limit=ten", "limit"),
    ("start_date=2026-11-01&categories=a", "categories"),  # /sums takes no categories
])
def test_sums_check_their_own_parameters(stats: FakeSendGrid, query: str, field: str) -> None:
    status, answer = get(stats, "/v3/categories/stats/sums?" + query)
    assert status == 400 and answer["errors"][0]["field"] == field


def test_figures_a_test_stores_must_be_sendgrids(sendgrid_server: FakeSendGrid) -> None:
    with pytest.raises(ValueError, match="not a metric"):
        sendgrid_server.add_category_stats("2026-11-23", "issue:one", opened=3)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        sendgrid_server.add_category_stats("23.11.2026", "issue:one", delivered=3)


def test_stats_need_the_key(stats: FakeSendGrid) -> None:
    request = urllib.request.Request(stats.url + "/v3/categories/stats?start_date=2026-11-01&categories=a")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)  # noqa: S310 - loopback only
    assert caught.value.code == 401
