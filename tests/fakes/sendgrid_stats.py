"""SendGrid's category statistics for the test server: GET /v3/categories/stats and /stats/sums.

The query is checked against the parameters that tests/fixtures/sendgrid/tsg_stats_v3.json declares
for each path (required ones present, no unknown ones, integers, enums, the YYYY-MM-DD dates its
descriptions ask for, at most 10 categories), and every answer is validated against the spec's own
CategoryStats schema before it leaves, so a fixture can never drift from what SendGrid sends.

The figures are what a test stores: date -> category -> metrics (any metric left out is 0). Like
SendGrid, /stats answers every date of the range for every category asked for (zeros included);
week and month buckets are dated by their first day within the range and sum the day figures
(SendGrid counts unique_* once per bucket, which day sums can only approximate from above).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import lru_cache
from typing import Any

from tests.fakes.sendgrid_checks import SPEC_DIR

STATS_PATHS = ("/v3/categories/stats", "/v3/categories/stats/sums")
MAX_CATEGORIES = 10  # "You may include up to 10 different categories."
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
Query = dict[str, list[str]]
Figures = dict[str, dict[str, dict[str, int]]]  # date -> category -> metric -> count


class QueryError(ValueError):
    """A query SendGrid would answer with 400: the field and the message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@lru_cache(maxsize=1)
def stats_spec() -> dict[str, Any]:
    return dict(json.loads((SPEC_DIR / "tsg_stats_v3.json").read_text(encoding="utf-8")))


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = stats_spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**{k: v for k, v in node.items() if k != "$ref"}, **target}
    return node


def query_parameters(path: str) -> dict[str, dict[str, Any]]:
    """The spec's query parameters of GET path, by name, with their schemas resolved."""
    params = [_resolve(p) for p in stats_spec()["paths"][path]["get"]["parameters"]]
    return {p["name"]: {**p, "schema": _resolve(p.get("schema", {}))} for p in params if p["in"] == "query"}


@lru_cache(maxsize=1)
def metric_names() -> tuple[str, ...]:
    schema = stats_spec()["components"]["schemas"]["CategoryStats"]
    return tuple(schema["properties"]["stats"]["items"]["properties"]["metrics"]["required"])


@lru_cache(maxsize=1)
def answer_validator() -> Any:
    """jsonschema's validator for one CategoryStats object, as the spec defines it."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(stats_spec()["components"]["schemas"]["CategoryStats"])


def check_query(path: str, query: Query) -> dict[str, Any]:
    """The query's values, typed, or QueryError naming the first thing SendGrid would refuse."""
    declared = query_parameters(path)
    values: dict[str, Any] = {}
    for name, given in query.items():
        if name not in declared:
            raise QueryError(name, f"unknown query parameter {name!r}")
        if name != "categories" and len(given) > 1:
            raise QueryError(name, f"{name} given {len(given)} times")
        schema = declared[name]["schema"]
        if schema.get("type") == "integer":
            if not re.fullmatch(r"\d+", given[0]) or int(given[0]) < schema.get("minimum", 0):
                raise QueryError(name, f"{name} must be an integer of {schema.get('minimum', 0)} or more")
            values[name] = int(given[0])
        elif "enum" in schema and given[0] not in schema["enum"]:
            raise QueryError(name, f"{name} must be one of {', '.join(schema['enum'])}")
        else:
            values[name] = given if name == "categories" else given[0]
    for name, param in declared.items():
        if param.get("required") and name not in values:
            raise QueryError(name, f"{name} is required")
    for name in ("start_date", "end_date"):
        if name in values and not _is_date(values[name]):
            raise QueryError(name, f"{name} must follow format YYYY-MM-DD")
    values.setdefault("end_date", dt.date.today().isoformat())
    if values["start_date"] > values["end_date"]:
        raise QueryError("start_date", "start_date must be before end_date")
    if len(values.get("categories", [])) > MAX_CATEGORIES:
        raise QueryError("categories", f"at most {MAX_CATEGORIES} categories")
    if path.endswith("/sums") and values.get("sort_by_metric", "delivered") not in metric_names():
        raise QueryError("sort_by_metric", "sort_by_metric must be a single metric")
    return values


def _is_date(text: str) -> bool:
    try:
        return bool(DATE.fullmatch(text)) and dt.date.fromisoformat(text) is not None
    except ValueError:
        return False


def zero_metrics() -> dict[str, int]:
    return dict.fromkeys(metric_names(), 0)


def metrics_for(figures: Figures, category: str, days: list[str]) -> dict[str, int]:
    total = zero_metrics()
    for day in days:
        for name, count in figures.get(day, {}).get(category, {}).items():
            total[name] += count
    return total


def _buckets(start: dt.date, end: dt.date, by: str) -> dict[str, list[str]]:
    """First date of each bucket within the range -> the dates it holds."""
    out: dict[str, list[str]] = {}
    day = start
    while day <= end:
        if by == "week":
            first = max(start, day - dt.timedelta(days=day.weekday()))
        elif by == "month":
            first = max(start, day.replace(day=1))
        else:
            first = day
        out.setdefault(first.isoformat(), []).append(day.isoformat())
        day += dt.timedelta(days=1)
    return out


def stats_answer(figures: Figures, values: dict[str, Any]) -> list[dict[str, Any]]:
    """GET /v3/categories/stats: one entry per bucket, each category asked for in it."""
    start, end = dt.date.fromisoformat(values["start_date"]), dt.date.fromisoformat(values["end_date"])
    answer = [{"date": first, "stats": [{"type": "category", "name": c, "metrics": metrics_for(figures, c, days)}
                                        for c in dict.fromkeys(values["categories"])]}
              for first, days in _buckets(start, end, values.get("aggregated_by", "day")).items()]
    for entry in answer:
        answer_validator().validate(entry)
    return answer


def sums_answer(figures: Figures, values: dict[str, Any]) -> dict[str, Any]:
    """GET /v3/categories/stats/sums: every category with figures in the range, summed, sorted, a page."""
    days = [d for d in sorted(figures) if values["start_date"] <= d <= values["end_date"]]
    names = sorted({c for d in days for c in figures[d]})
    stats = [{"type": "category", "name": c, "metrics": metrics_for(figures, c, days)} for c in names]
    metric = values.get("sort_by_metric", "delivered")
    stats.sort(key=lambda s: s["metrics"][metric], reverse=values.get("sort_by_direction", "desc") == "desc")
    offset, limit = values.get("offset", 0), values.get("limit", 5)
    answer = {"date": values["start_date"], "stats": stats[offset:offset + limit]}
    answer_validator().validate(answer)
    return answer


def checked_figures(date: str, category: str, metrics: dict[str, int]) -> dict[str, int]:
    """A test's figures for one day and category, refused if SendGrid could not have sent them."""
    if not _is_date(date):
        raise ValueError(f"{date!r} is not a YYYY-MM-DD date")
    unknown = set(metrics) - set(metric_names())
    if unknown:
        raise ValueError(f"not a metric of SendGrid's category stats: {', '.join(sorted(unknown))}")
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in metrics.values()):
        raise ValueError("metrics are counts: integers of 0 or more")
    return dict(metrics)
