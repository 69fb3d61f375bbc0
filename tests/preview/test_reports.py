"""The preview's Reports page: the list over time and each issue's outcomes, drawn as SVG on the server.

Most tests hand the preview an Overview built by hand (the callable the CLI passes in); one sends
an issue through the outbox and lets the preview ask the CLI's own report builder. In Chromium:
the charts draw, nothing scrolls sideways at 375 px, and axe finds nothing, in light and dark.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.config import Settings
from newsletter.errors import NewsletterError
from newsletter.preview.server import PreviewServer
from newsletter.report import IssueReport, LedgerCounts, MonthGrowth, Outcomes, Overview, Rate, Rates
from tests.fakes import fixtures
from tests.fakes.smtp import FakeSMTP

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / ".ci" / "node" / "node_modules" / "axe-core" / "axe.min.js"
SLUG = "the-fear-of-entering-the-room"
PHONE = {"width": 375, "height": 740}

smtp_server, smtp_env = fixtures.smtp_server, fixtures.smtp_env


def issue(slug: str, subject: str, *, delivered: int | None, bounced: int, complaints: int, unsubscribes: int,
          clicks: int | None, handed_over: int = 200, clicks_tracked: bool = True, source: str = "sendgrid-events",
          when: str = "2026-11-23") -> IssueReport:
    outcomes = Outcomes(source, delivered=delivered, bounced_hard=bounced, bounced_soft=0, spam_reports=complaints,
                        unsubscribes=unsubscribes, unique_clicks=clicks)
    base = delivered or 1
    return IssueReport(slug, subject, when, LedgerCounts("sendgrid", f"{when}T09:00:00+00:00", handed_over,
                                                         handed_over, 0, 0, 0),
                       outcomes, rates=Rates(bounce=Rate(bounced, handed_over, "handed over"),
                                             complaint=Rate(complaints, base, "delivered")),
                       clicks_tracked=clicks_tracked)


OVERVIEW = Overview(
    issues=(
        issue(SLUG, "The Fear of <Entering> the Room", delivered=194, bounced=6, complaints=1, unsubscribes=3,
              clicks=41),
        issue("on-weather", "On Weather", delivered=180, bounced=2, complaints=0, unsubscribes=1, clicks=0,
              handed_over=182, clicks_tracked=False, when="2026-10-12"),
        issue("by-smtp", "Sent by SMTP", delivered=None, bounced=1, complaints=0, unsubscribes=0, clicks=None,
              handed_over=150, source="inbox", when="2026-09-01"),
    ),
    growth=tuple(MonthGrowth(f"2026-{m:02d}", 10 + m, m // 3, 100 + 9 * m) for m in range(1, 12)),
    warnings=("The Fear of <Entering> the Room: 3.00 % of messages bounced hard, past 2 %",),
    unknown=("SENDGRID_API_KEY is not set: SendGrid's statistics were not read",),
)


class Calls:
    """A report builder that counts how often the preview asks it."""

    def __init__(self, result: Overview | NewsletterError = OVERVIEW) -> None:
        self.result = result
        self.count = 0

    def __call__(self, settings: Settings) -> Overview:
        self.count += 1
        if isinstance(self.result, NewsletterError):
            raise self.result
        return self.result


def page_of(server: PreviewServer, path: str = "/reports/") -> tuple[int, str]:
    response = server.respond(path, "127.0.0.1")
    assert isinstance(response.body, bytes)
    return response.status, response.body.decode()


@pytest.fixture
def serve(newsletter_dir: Path) -> Iterator[Callable[..., PreviewServer]]:
    servers: list[PreviewServer] = []

    def start(reports: Callable[[Settings], Overview] | None = None) -> PreviewServer:
        server = PreviewServer(newsletter_dir / "newsletter.toml", port=0, reports=reports)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_each_issue_gets_a_chart_of_its_outcomes(serve: Callable[..., PreviewServer]) -> None:
    status, html = page_of(serve(Calls()))
    assert status == 200
    charts = re.findall(r'<svg class="chart chart-issue".*?</svg>', html, re.S)
    assert len(charts) == 3
    first = charts[0]
    values = dict(re.findall(r'class="bar bar-(\w+)"[^>]*data-value="(\d+)"', first))
    assert values == {"delivered": "194", "bounced": "6", "complained": "1", "unsubscribed": "3", "clicked": "41"}
    widths = {k: float(w) for k, w in re.findall(r'class="bar bar-(\w+)"[^>]*width="([\d.]+)"', first)}
    assert widths["delivered"] > widths["clicked"] > widths["bounced"] > widths["complained"] >= 2.0
    # Clicks not tracked are said so, not drawn as zero; an SMTP issue's deliveries are unknown.
    assert "not tracked" in charts[1] and "bar-clicked" not in charts[1]
    assert "bar-delivered" not in charts[2] and "unknown" in charts[2]
    assert "<script" not in html.split("</header>", 1)[1]  # the page needs no script of its own


def test_the_list_over_time_and_the_table_of_newsletter_report(serve: Callable[..., PreviewServer]) -> None:
    _, html = page_of(serve(Calls()))
    growth = re.search(r'<svg class="chart chart-growth".*?</svg>', html, re.S)
    assert growth is not None and growth.group(0).count('class="bar bar-size"') == 11
    assert 'data-value="199"' in growth.group(0)  # November: 100 + 9 * 11
    table = html.split('class="report-table issues-table"', 1)[1].split("</table>", 1)[0]
    assert [re.sub(r"<.*?>", "", r).split("\n")[0] for r in re.findall(r"<tr>(.*?)</tr>", table, re.S)][1:] != []
    assert "3.00 %" in table and "0.52 %" in table  # bounce rate of the first issue; its complaint rate
    assert "2026-11-23" in table and "2026-10-12" in table
    assert "past 2 %" in html and "SENDGRID_API_KEY is not set" in html


def test_text_is_escaped_in_the_charts_and_the_table(serve: Callable[..., PreviewServer]) -> None:
    _, html = page_of(serve(Calls()))
    assert "<Entering>" not in html and "&lt;Entering&gt;" in html


def test_without_a_report_builder_the_page_says_where_reports_come_from(serve: Callable[..., PreviewServer]) -> None:
    status, html = page_of(serve(None))
    assert status == 200 and "newsletter preview" in html and "<svg" not in html


def test_a_problem_is_shown_on_the_page(serve: Callable[..., PreviewServer]) -> None:
    status, html = page_of(serve(Calls(NewsletterError("sends/x.jsonl:3: not a ledger record"))))
    assert status == 500 and "sends/x.jsonl:3: not a ledger record" in html


def test_the_builder_is_asked_again_only_when_a_ledger_changes(serve: Callable[..., PreviewServer],
                                                               newsletter_dir: Path) -> None:
    calls = Calls()
    server = serve(calls)
    page_of(server)
    page_of(server)
    assert calls.count == 1  # a page that reloads on every save does not ask SendGrid every time
    (newsletter_dir / "sends").mkdir(exist_ok=True)
    (newsletter_dir / "sends" / "new.jsonl").write_text("{}\n")
    page_of(server)
    assert calls.count == 2


def test_reports_without_the_slash_moves(serve: Callable[..., PreviewServer]) -> None:
    response = serve(Calls()).respond("/reports", "127.0.0.1")
    assert response.status == 301 and ("Location", "/reports/") in response.headers


def test_the_issue_page_says_what_is_tracked(serve: Callable[..., PreviewServer], newsletter_dir: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _, html = page_of(serve(), f"/issue/{SLUG}/")
    assert "sent as written" in html
    monkeypatch.setenv("NEWSLETTER_DELIVERY__PROVIDER", "sendgrid")
    monkeypatch.setenv("NEWSLETTER_SENDGRID__CLICK_TRACKING", "true")
    _, html = page_of(serve(), f"/issue/{SLUG}/")
    assert "plain-text part keeps the essay’s own links" in html.replace("&#39;", "’").replace("'", "’")
    assert "SendGrid’s click tracking" in html.replace("&#39;", "’").replace("'", "’")


def test_the_cli_hands_the_preview_its_report_builder(smtp_env: FakeSMTP, newsletter_dir: Path, runner: CliRunner,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Send by SMTP (to a loopback server), then `newsletter preview`'s own builder fills the page."""
    from newsletter.cli.report import overview_for

    assert runner.invoke(app, ["send", SLUG, "--yes"]).exit_code == 0
    handed: dict[str, Any] = {}

    class Stub(PreviewServer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            handed.update(kwargs)
            super().__init__(*args, **{**kwargs, "port": 0})

        def serve_forever(self) -> None:
            raise KeyboardInterrupt

    monkeypatch.setattr("newsletter.preview.PreviewServer", Stub, raising=False)
    monkeypatch.setattr("newsletter.preview.server.PreviewServer", Stub)
    result = runner.invoke(app, ["preview", "--no-open"])
    assert result.exit_code == 0, result.output
    assert handed["reports"] is overview_for
    with PreviewServer(newsletter_dir / "newsletter.toml", port=0, reports=overview_for) as server:
        status, html = page_of(server)
    assert status == 200 and 'data-slug="the-fear-of-entering-the-room"' in html
    assert "The Fear of Entering the Room" in html


# -- in Chromium ------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_it_draws_reads_at_375_px_and_passes_axe(browser: Any, serve: Callable[..., PreviewServer],
                                                 scheme: str) -> None:
    server = serve(Calls()).start()
    origin = server.url.rstrip("/")
    context = browser.new_context(viewport=PHONE, color_scheme=scheme)
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(origin + "/")
                  else route.abort())
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        page.goto(origin + "/reports/")
        bars = page.locator("svg.chart-issue rect.bar")
        assert bars.count() == 12  # 5 + 4 (clicks not tracked) + 3 (SMTP: delivered and clicks unknown)
        box = bars.first.bounding_box()
        assert box is not None and box["width"] > 50 and box["height"] > 5  # drawn, not collapsed
        growth = page.locator("svg.chart-growth rect.bar").last.bounding_box()
        assert growth is not None and growth["height"] > 20
        fill = page.locator("svg.chart-issue rect.bar-delivered").first.evaluate("el => getComputedStyle(el).fill")
        assert fill not in ("", "none", "rgb(0, 0, 0)")  # coloured by the page's CSS, not by default
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        label = page.locator("svg.chart-issue text.label").first.bounding_box()
        assert label is not None and label["height"] >= 11  # chart text stays legible on a phone
        assert errors == []  # nothing refused by the CSP
        if AXE.exists():
            page.evaluate(f"() => {{ {AXE.read_text(encoding='utf-8')}\n }}")
            violations = page.evaluate(
                """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                    .map(v => `${v.id}: ${v.help} at ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)""")
            assert violations == []
        page.set_viewport_size({"width": 1440, "height": 900})
        assert page.locator("table.issues-table thead").evaluate("el => getComputedStyle(el).display") != "block"
    finally:
        context.close()
