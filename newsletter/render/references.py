"""The files and pages an essay refers to inside its own site: do they exist, are they published?

An essay's relative link or image (`images/tide-pool.png`, `../another-issue/`) resolves against
[newsletter] url, so the file has to be under issues/ (from where `newsletter archive` copies it)
and a page has to be an issue the archive publishes. "Published" is known from the archive
folder ([archive] out, site/ by default): the files its manifest lists are the ones `newsletter
archive` wrote there. Whether that folder is on the web yet, no tool can know from here.
"""

from __future__ import annotations

import html as htmlmod
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from newsletter.config import Settings
from newsletter.errors import NewsletterError
from newsletter.issues import locate_issue, parse_issue
from newsletter.models import PUBLISHED_STATUSES, Issue, RenderedEmail
from newsletter.render.essay import COLUMN_WIDTH, pixel_width, prose_lines
from newsletter.render.imagesize import image_width

SITE_FILES = ("", "index.html", "feed.xml", "sitemap.xml", "robots.txt")
_PAGE = re.compile(r"^(?P<slug>[^/]+)/?(?:index\.html)?$")
Report = Callable[[str, str, str], None]  # (level, code, message)


def site_path(settings: Settings, url: str) -> str | None:
    """The path inside the site an absolute URL names ('images/x.png'), or None if outside it."""
    base = settings.newsletter.url.rstrip("/") + "/"
    if not url.startswith(base):
        return None
    return unquote(urlsplit(url[len(base):]).path)


def local_file(settings: Settings, rel: str) -> Path | None:
    """The file under issues/ a site path names, if it is one `newsletter archive` would publish."""
    issues_dir = settings.issues_dir.resolve()
    parts = rel.split("/")
    if not rel or any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    source = (issues_dir / rel).resolve()
    inside = source.is_relative_to(issues_dir) and source.relative_to(issues_dir).as_posix() == rel
    return source if inside and source.is_file() and source.suffix != ".md" else None


def local_images(settings: Settings, rendered: RenderedEmail) -> dict[str, Path]:
    """The essay's images that are files under issues/: site path -> file."""
    found: dict[str, Path] = {}
    for tag, _, url in rendered.refs:
        rel = site_path(settings, url) if tag == "img" else None
        source = local_file(settings, rel) if rel else None
        if rel and source is not None:
            found[rel] = source
    return found


def show_local_images(html: str, settings: Settings, images: dict[str, Path]) -> str:
    """Point the essay's own images at files beside the HTML (for build and the preview only)."""
    base = htmlmod.escape(settings.newsletter.url.rstrip("/") + "/", quote=True)

    def relative(match: re.Match[str]) -> str:
        rel = site_path(settings, htmlmod.unescape(base + match.group(2)))
        return match.group(1) + match.group(2) if rel in images else match.group(0)

    return re.sub(r'(<img\b[^>]*?\ssrc=")' + re.escape(base) + r'([^"]*)', relative, html)


def line_of(issue: Issue, written: str) -> str:
    """`file:line` of the first prose line that holds `written`; the file alone if none does."""
    if written:
        for offset, line in enumerate(prose_lines(issue.body)):
            if written in line or htmlmod.escape(written) in line:
                return f"{issue.path}:{issue.body_line + offset}"
    return str(issue.path)


def check_refs(issue: Issue, rendered: RenderedEmail, settings: Settings, report: Report) -> None:
    """Every image and link into the site names a file under issues/ or a published issue."""
    unpublished: list[tuple[str, str]] = []
    done: set[tuple[str, str]] = set()
    for tag, written, url in rendered.refs:
        rel = site_path(settings, url)
        if rel is None or written.startswith("#") or (tag, written) in done:
            continue
        done.add((tag, written))
        where, what = line_of(issue, written), "image" if tag == "img" else "link"
        source = local_file(settings, rel)
        if source is not None:
            if tag == "img":
                _check_width(rendered, url, source, where, report)
                if rel not in _published(settings):
                    unpublished.append((where, rel))
        elif tag == "img":
            report("error", what, f"{where}: image {written!r}: there is no file issues/{rel}")
        elif rel not in SITE_FILES and not _is_published_issue(settings, issue, rel):
            problem = _page_problem(settings, issue, rel)
            level = "error" if problem or urlsplit(written).scheme == "" else "warning"
            report(level, what, f"{where}: link {written!r}: "
                   + (problem or f"names neither a published issue nor a file in issues/ ({rel})"))
    if unpublished:
        where, rel = unpublished[0]
        more = f" and {len(unpublished) - 1} more" if len(unpublished) > 1 else ""
        report("warning", "unpublished", f"{where}: the essay's images ({rel}{more}) load only after the "
               f"archive is published: run `newsletter archive` and put {settings.archive.out}/ online "
               f"at {settings.newsletter.url}")


def _page_problem(settings: Settings, issue: Issue, rel: str) -> str | None:
    """Why a link to an issue's page will be broken, or None when it names no issue at all."""
    match = _PAGE.match(rel)
    if match is None or match.group("slug") == issue.slug:
        return None
    try:
        path = locate_issue(settings.issues_dir, match.group("slug"), skip_broken=True)
        other = parse_issue(path) if path is not None else None
    except NewsletterError:
        return None
    if other is None or other.status in PUBLISHED_STATUSES:
        return None
    return f"{other.path} is a {other.status}: its page is not in the archive until it is ready"


def _is_published_issue(settings: Settings, issue: Issue, rel: str) -> bool:
    match = _PAGE.match(rel)
    if match is None:
        return False
    if match.group("slug") == issue.slug:
        return True
    try:
        path = locate_issue(settings.issues_dir, match.group("slug"), skip_broken=True)
        return path is not None and parse_issue(path).status in PUBLISHED_STATUSES
    except NewsletterError:
        return False


def _check_width(rendered: RenderedEmail, url: str, source: Path, where: str, report: Report) -> None:
    """Warn when an image is shown wider than it is (it looks blurred), with its real width."""
    given = next((width for src, _, width in rendered.images if src == url), "")
    real = image_width(source)
    if real is None:
        return
    shown = _shown_width(given)
    if real < shown:
        hint = f"add {{width={real}}} after it" if not given.strip() else f"use an image at least {shown} px wide"
        report("warning", "image", f"{where}: image {source.name} is {real} px wide but shown {shown} px "
                                   f"wide, so it looks blurred: {hint}")


def _shown_width(given: str) -> int:
    return pixel_width(given) if given.strip() else COLUMN_WIDTH


def _published(settings: Settings) -> set[str]:
    """The files `newsletter archive` last wrote into the archive folder that are still there."""
    from newsletter.output import written_files

    folder = settings.path(settings.archive.out)
    try:
        return {rel for rel in written_files(folder) if (folder / rel).is_file()}
    except NewsletterError:
        return set()
