"""What the preview server shows: the index, an issue's page and raw files, error pages.

Pure of HTTP: every method returns a Response. Renders go through build.render_and_check and
build.sample_files, the same code `newsletter build` uses, so the frames show the bytes `build`
writes. A render is cached under a stamp of everything it reads (newsletter.toml, templates, the
issue file), so a page can never show a stale render, even if a file event is missed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import jinja2

from newsletter.config import Settings, load_settings
from newsletter.errors import ConfigError, NewsletterError
from newsletter.issues import list_issues, locate_issue, split_filename
from newsletter.models import Issue
from newsletter.preview.reports import ReportsCache, ReportsSource, page_context, tracking_note
from newsletter.render import GMAIL_CLIP_BYTES, KB, PACKAGE_TEMPLATES, CheckReport, kb

RAW_FILES = {
    "email.html": "text/html; charset=utf-8",
    "email.txt": "text/plain; charset=utf-8",
    "message.eml": "message/rfc822",
}
ASSETS = Path(__file__).resolve().parent / "assets"  # the preview's own pages, style and script
STATIC_FILES = {"preview.css": "text/css; charset=utf-8", "preview.js": "text/javascript; charset=utf-8"}
# The raw email may be opened on its own: whatever it holds, it runs no script and posts no form.
EMAIL_CSP = "script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
PAGE_CSP = ("default-src 'self'; img-src 'self' https: http: data:; style-src 'self'; "
            "script-src 'self'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'")
LEVEL_ORDER = {"error": 0, "warning": 1, "ok": 2}
Stamp = tuple[tuple[str, int, int, int], ...]


@dataclass(frozen=True)
class Response:
    """An HTTP answer: a status, a body (bytes, or chunks for a stream) and its headers."""

    status: int
    body: bytes | Iterable[bytes]
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = (("Content-Security-Policy", PAGE_CSP),)


@dataclass(frozen=True)
class IssueView:
    """One issue rendered for the sample recipient, with everything its page shows."""

    issue: Issue
    report: CheckReport
    files: dict[str, bytes]  # email.html, email.txt, message.eml exactly as `build` writes them
    sender_name: str
    sender_address: str
    reply_to: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.files["email.html"]).hexdigest()[:16]

    @property
    def text(self) -> str:
        return self.files["email.txt"].decode()

    @property
    def clip_percent(self) -> int:
        return round(100 * self.report.html_bytes / GMAIL_CLIP_BYTES)


Outcome = IssueView | NewsletterError


def stamp(paths: Iterable[Path]) -> Stamp:
    """(path, mtime, size, inode) of each existing file: changes whenever one of them is saved."""
    out = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((str(path), st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


def _files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.is_file()) if folder.is_dir() else []


def format_date_short(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


class PreviewSite:
    """Render pages for one newsletter folder; safe to call from many threads."""

    def __init__(self, config_path: Path, unsubscribe_secret: Callable[[Settings], str] = lambda _: "",
                 log: Callable[[str], None] = lambda _: None,
                 version: Callable[[], str] = lambda: "0", reports: ReportsSource | None = None) -> None:
        self.config_path = config_path.resolve()
        self.root = self.config_path.parent
        self.unsubscribe_secret = unsubscribe_secret  # the CLI reads it: a preview never reads a secret itself
        self.log = log
        self.version = version
        self.reports_cache = ReportsCache(reports)  # the CLI's report builder: a preview cannot read SendGrid
        self._lock = threading.Lock()  # one render at a time: frames wait for the page's render
        self._settings: tuple[Stamp, Settings | NewsletterError] | None = None
        self._renders: dict[Path, tuple[tuple[Stamp, Stamp], Outcome]] = {}
        self._site: tuple[Stamp, dict[str, bytes]] | None = None  # the web archive, for /archive/
        self._known: dict[str, Path] = {}  # slug -> file, remembered while its front matter is broken
        self._pages = jinja2.Environment(
            loader=jinja2.FileSystemLoader(ASSETS), autoescape=True,
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        )
        self._pages.filters["kb"] = kb
        self._pages.filters["short"] = self.short

    # -- inputs ---------------------------------------------------------------------------------

    def inputs_stamp(self) -> Stamp:
        """Everything every render reads besides the issue file itself."""
        templates = _files_in(self.root / "templates") + _files_in(PACKAGE_TEMPLATES) + _files_in(ASSETS)
        return stamp([self.config_path, *templates])

    def watch_stamp(self) -> Stamp:
        """The stamp of every file a page reads: the render inputs and every issue file."""
        return self.inputs_stamp() + stamp(list_issues(self.root / "issues"))

    def settings(self) -> Settings:
        """The current Settings, reloaded when newsletter.toml changes; raises ConfigError."""
        key = stamp([self.config_path])
        if self._settings is None or self._settings[0] != key:
            try:
                value: Settings | NewsletterError = load_settings(self.config_path)
            except NewsletterError as exc:
                value = exc
            self._settings = (key, value)
        value = self._settings[1]
        if isinstance(value, NewsletterError):
            raise value
        return value

    def render(self, path: Path) -> Outcome:
        """Render one issue file (cached until anything it reads changes)."""
        with self._lock:
            key = (self.inputs_stamp(), stamp([path]))
            cached = self._renders.get(path)
            if cached is not None and cached[0] == key:
                return cached[1]
            outcome = self._render(path)
            before = self._renders.get(path)
            self._renders[path] = (key, outcome)
        self._log_transition(path, before[1] if before else None, outcome)
        return outcome

    def _log_transition(self, path: Path, before: Outcome | None, after: Outcome) -> None:
        """Tell the terminal when a file starts failing, fails differently, or renders again."""
        if isinstance(after, NewsletterError):
            if not isinstance(before, NewsletterError) or before.message != after.message:
                self.log(self.short(f"error: {after.message}"))
        elif isinstance(before, NewsletterError):
            self.log(f"fixed: {self.rel(path)} renders again")

    def _render(self, path: Path) -> Outcome:
        from newsletter.render import render_and_check, sample_files

        try:
            settings = self.settings()
            issue, rendered, report = render_and_check(settings, str(path))
        except NewsletterError as exc:
            return exc
        secret = self.unsubscribe_secret(settings)
        name, address = parseaddr(settings.sender.from_)
        self._known[issue.slug] = path
        return IssueView(issue, report, sample_files(rendered, settings, secret),
                         " ".join(name.split()) or address, address, settings.sender.reply_to)

    def short(self, message: str) -> str:
        """A message with paths inside the newsletter folder made relative (issues/x.md:3: ...)."""
        return message.replace(str(self.root) + os.sep, "")

    def find(self, slug: str) -> Path | None:
        """The issue file for a slug: by file name, then by front matter, then as last seen."""
        path = locate_issue(self.root / "issues", slug, skip_broken=True)
        if path is not None:
            return path
        known = self._known.get(slug)
        return known if known is not None and known.is_file() else None

    # -- pages ----------------------------------------------------------------------------------

    def page(self, template: str, status: int = 200, **context: Any) -> Response:
        """Render one of the preview's own templates into a Response."""
        try:
            name = self.settings().newsletter.name
        except NewsletterError:
            name = self.root.name
        html = self._pages.get_template(template).render(
            newsletter_name=name, version=self.version(), root=str(self.root), **context)
        return Response(status, html.encode())

    def index(self) -> Response:
        """Every issue, newest first: date, status, subject, size, preflight at a glance."""
        try:
            self.settings()
        except NewsletterError as exc:
            return self.page("preview_error.html", 500, title="newsletter.toml has a problem", error=exc,
                             layout="error", slug="")
        rows = [self._row(path, self.render(path)) for path in list_issues(self.root / "issues")]
        rows.sort(key=lambda row: (row["when"], row["file"]), reverse=True)
        return self.page("preview_index.html", rows=rows, layout="index", slug="")

    def issue_page(self, slug: str) -> Response:
        """An issue's page, or its render error with file and line, or a 404 that waits for it."""
        path = self.find(slug)
        if path is None:
            return self.missing(f"No issue with the slug “{slug}” in issues/.", slug=slug)
        outcome = self.render(path)
        if isinstance(outcome, NewsletterError):
            what = "newsletter.toml" if isinstance(outcome, ConfigError) else self.rel(path)
            return self.page("preview_error.html", 500, title=f"{what} has a problem",
                             error=outcome, layout="error", slug=slug)
        checks = sorted(outcome.report.results, key=lambda r: LEVEL_ORDER.get(r.level, 3))
        opens, links = tracking_note(self.settings())
        return self.page("preview_issue.html", view=outcome, file=self.rel(path), layout="issue",
                         opens_note=opens, links_note=links,
                         slug=slug, checks=checks, clip_kb=GMAIL_CLIP_BYTES // KB, clip_low=GMAIL_CLIP_BYTES - 10 * KB,
                         gmail_clip=GMAIL_CLIP_BYTES, short_date=f"{outcome.issue.date:%b} {outcome.issue.date.day}")

    def reports(self) -> Response:
        """The Reports page: each sent issue's outcomes as charts and the table of `newsletter report`."""
        try:
            settings = self.settings()
            got = self.reports_cache.get(settings)
        except NewsletterError as exc:
            return self.page("preview_error.html", 500, title="The reports have a problem", error=exc,
                             layout="error", slug="")
        if got is None:
            return self.page("preview_reports.html", available=False, read_at="", layout="reports", slug="")
        overview, read_at = got
        return self.page("preview_reports.html", available=True, layout="reports", slug="",
                         read_at=dt.datetime.fromtimestamp(read_at).strftime("%H:%M:%S"),
                         **page_context(overview, settings))

    def issue_file(self, slug: str, name: str) -> Response | None:
        """email.html, email.txt, message.eml or one of the essay's images, exactly as `build` writes them.

        Only what the render holds is served: a file in issues/ that no essay shows is a 404.
        """
        path = self.find(slug)
        outcome = self.render(path) if path is not None else None
        if not isinstance(outcome, IssueView):
            if name not in RAW_FILES:
                return None
            text = outcome.message if outcome is not None else f"no issue with the slug {slug!r}"
            return Response(404 if outcome is None else 500, (text + "\n").encode(),
                            "text/plain; charset=utf-8", ())
        if name not in outcome.files:
            return None
        if name not in RAW_FILES:
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            return Response(200, outcome.files[name], kind, (("Content-Security-Policy", EMAIL_CSP),))
        headers: tuple[tuple[str, str], ...] = (("Content-Security-Policy", EMAIL_CSP),)
        if name == "message.eml":
            headers += (("Content-Disposition", f'attachment; filename="{outcome.issue.slug}.eml"'),)
        return Response(200, outcome.files[name], RAW_FILES[name], headers)

    def archive_file(self, rest: str) -> Response | None:
        """A file of the web archive (drafts included, marked as such), rendered in memory.

        The site is rebuilt when any file it reads changes; a path it does not hold is a 404.
        """
        from newsletter.archive import render_site

        try:
            settings = self.settings()
            with self._lock:
                key = self.watch_stamp()
                if self._site is None or self._site[0] != key:
                    self._site = (key, render_site(settings, include_drafts=True))
                files = self._site[1]
        except NewsletterError as exc:
            return self.page("preview_error.html", 500, title="The archive has a problem", error=exc,
                             layout="error", slug="")
        name = rest + "index.html" if rest == "" or rest.endswith("/") else rest
        if name not in files:
            return None
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        kind += "; charset=utf-8" if kind.startswith("text/") or kind.endswith("xml") else ""
        return Response(200, files[name], kind, ())

    def static(self, name: str) -> Response:
        """The preview's own stylesheet and script (read on each request: no stale copies)."""
        return Response(200, (ASSETS / name).read_bytes(), STATIC_FILES[name], ())

    def missing(self, message: str = "Nothing here.", slug: str = "") -> Response:
        """A 404 page; it updates by itself, so an issue that appears later shows up."""
        return self.page("preview_error.html", 404, title="Not found", error=None, message=message,
                         layout="missing", slug=slug)

    def _row(self, path: Path, outcome: Outcome) -> dict[str, Any]:
        """One line of the index; a file that does not render still gets one, with its error."""
        view = outcome if isinstance(outcome, IssueView) else None
        when = view.issue.date if view else _file_date(path)
        return {
            "file": self.rel(path), "view": view, "when": when,
            "error": outcome if view is None else None,
            "date": format_date_short(when) if when != dt.date.min else "",
            "slug": view.issue.slug if view else (split_filename(path)[1] or path.stem),
        }

    def rel(self, path: Path) -> str:
        """A path as shown on the page: relative to the newsletter folder when inside it."""
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)


def _file_date(path: Path) -> dt.date:
    date_text = split_filename(path)[0]
    try:
        return dt.date.fromisoformat(date_text) if date_text else dt.date.min
    except ValueError:
        return dt.date.min
