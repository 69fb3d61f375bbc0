"""The static web archive: an index, a page per published issue, an Atom feed, a sitemap.

render_site is pure (it reads issues, templates and the files essays refer to; it writes nothing),
so the preview server can serve its result at /archive/. Links between pages are relative, so the
site works under any prefix; canonical, Open Graph, sitemap and feed URLs are absolute, from
[newsletter] url. The output depends only on the inputs (no build time anywhere), so a rebuild with
no change gives identical bytes. write_site puts it in a folder (see newsletter.output).
"""

from __future__ import annotations

import html as htmlmod
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import jinja2
from markupsafe import Markup

from newsletter.archive.entries import WebIssue, shorten, web_issue
from newsletter.archive.feed import atom_feed, robots_txt, sitemap
from newsletter.config import Settings
from newsletter.errors import IssueError, NewsletterError
from newsletter.issues import load_issues
from newsletter.models import PUBLISHED_STATUSES, Issue
from newsletter.render import Essay, base_url, format_date, render_template, template_env, template_source
from newsletter.render.references import local_file


@dataclass
class Site:
    """The rendered site (relative path -> bytes) and what a writer should hear about it."""

    files: dict[str, bytes]
    issues: list[WebIssue]
    warnings: list[str] = field(default_factory=list)


def render_site(settings: Settings, include_drafts: bool = False) -> dict[str, bytes]:
    """Render the whole archive in memory: {"index.html": ..., "<slug>/index.html": ..., ...}."""
    return build_site(settings, include_drafts).files


def build_site(settings: Settings, include_drafts: bool = False) -> Site:
    """Render the archive and collect warnings (broken internal links, no way to subscribe)."""
    chosen = [i for i in load_issues(settings.issues_dir) if include_drafts or i.status in PUBLISHED_STATUSES]
    _refuse_duplicate_slugs(chosen)
    issues = [web_issue(settings, issue) for issue in chosen]
    published = [w for w in issues if not w.draft]
    env = template_env(settings)  # once per build: compiling templates is most of the cost
    files: dict[str, bytes] = {"index.html": _index_page(settings, env, issues)}
    for n, web in enumerate(issues):
        newer = issues[n - 1].issue if n > 0 else None
        older = issues[n + 1].issue if n + 1 < len(issues) else None
        files[f"{web.issue.slug}/index.html"] = _issue_page(settings, env, web, older, newer)
    files["feed.xml"] = atom_feed(settings, published)
    files["sitemap.xml"] = sitemap(settings, published)
    files["robots.txt"] = robots_txt(settings)
    site = Site(files=files, issues=issues)
    _add_assets(settings, site)
    if not (settings.readers_url or settings.newsletter.subscribe_url or settings.newsletter.subscribe_mailto):
        site.warnings.append(
            f"{settings.config_path}: [newsletter] has no subscribe_url or subscribe_mailto, and [readers] no url: "
            "the archive cannot tell readers how to subscribe"
        )
    site.files = dict(sorted(site.files.items()))
    site.warnings = list(dict.fromkeys(site.warnings))  # a link used twice is reported once
    return site


def _refuse_duplicate_slugs(issues: list[Issue]) -> None:
    """Two issues with one slug would share a page: name both files."""
    seen: dict[str, Path] = {}
    for issue in sorted(issues, key=lambda i: i.path):
        if issue.slug in seen:
            raise IssueError(
                f"{issue.path}: slug {issue.slug!r} is also the slug of {seen[issue.slug]}",
                hint="each issue needs its own slug: it is the page's address",
            )
        seen[issue.slug] = issue.path


def _relative(fragment: str, settings: Settings, root: str) -> str:
    """Point the essay's links into this site relatively, so they work under any prefix."""
    base = htmlmod.escape(base_url(settings), quote=True)
    return re.sub(r'(\s(?:href|src)=")' + re.escape(base), lambda m: m.group(1) + root, fragment)


def _web_images(fragment: str, essay: Essay) -> str:
    """Drop the width the email needs but the writer never gave: on the web, CSS fits images."""
    given = iter([width for _, _, width in essay.images])

    def fix(match: re.Match[str]) -> str:
        tag = match.group(0)
        return tag if next(given, "x") else re.sub(r'\swidth="\d+"', "", tag)

    return re.sub(r"<img\b[^>]*>", fix, fragment)


def _common(settings: Settings, root: str) -> dict[str, Any]:
    nl = settings.newsletter
    address = nl.subscribe_mailto.removeprefix("mailto:").split("?")[0]
    subject = quote(f"Subscribe to {nl.name}")
    return {
        "lang": nl.language, "dir": nl.direction, "newsletter_name": nl.name, "root": root,
        "site_description": nl.description, "author": nl.author, "newsletter_author": nl.author,
        "subscribe_url": nl.subscribe_url, "subscribe_address": address,
        # The reader service's own form, when there is one: it replaces the link and the address.
        "subscribe_action": settings.readers_url + "subscribe" if settings.readers_url else "",
        "subscribe_confirm": settings.readers.double_opt_in,
        "subscribe_mailto_href": f"mailto:{address}?subject={subject}" if address else "",
        "image": "", "image_alt": "", "noindex": False,
    }


def _render(env: jinja2.Environment, name: str, context: dict[str, Any]) -> bytes:
    css = Markup(template_source(env, "web.css"))
    return render_template(env, name, {**context, "css": css}).encode("utf-8")


def _index_page(settings: Settings, env: jinja2.Environment, issues: list[WebIssue]) -> bytes:
    nl = settings.newsletter
    entries = [
        {"slug": w.issue.slug, "title": w.issue.title, "subtitle": w.issue.subtitle, "draft": w.draft,
         "date": w.issue.date.isoformat(), "date_text": format_date(w.issue), "minutes": w.minutes}
        for w in issues
    ]
    return _render(env, "web_index.html", {
        **_common(settings, "./"), "page_title": nl.name, "social_title": nl.name,
        "description": shorten(" ".join(nl.description.split()), 300) or nl.name,
        "canonical": base_url(settings), "og_type": "website", "entries": entries,
    })


def _issue_page(
    settings: Settings, env: jinja2.Environment, web: WebIssue, older: Issue | None, newer: Issue | None
) -> bytes:
    issue, nl = web.issue, settings.newsletter
    image = next(((src, alt) for src, alt, _ in web.essay.images if src.startswith("https://")), ("", ""))
    return _render(env, "web_issue.html", {
        **_common(settings, "../"), "page_title": f"{issue.title} · {nl.name}",
        "social_title": issue.title, "description": web.description, "canonical": web.url,
        "og_type": "article", "image": image[0], "image_alt": image[1], "noindex": web.draft,
        "title": issue.title, "subtitle": issue.subtitle, "author": issue.author or nl.author,
        "date": issue.date.isoformat(), "date_text": format_date(issue), "minutes": web.minutes,
        "essay": Markup(_web_images(_relative(web.essay.html, settings, "../"), web.essay)), "draft": web.draft,
        "older": older, "newer": newer,
    })


def _add_assets(settings: Settings, site: Site) -> None:
    """Copy files that essays refer to by a relative path (images/x.jpg -> issues/images/x.jpg).

    An essay's relative link resolves against [newsletter] url, in the email as on the web, so
    the file has to be in the archive at that path. Links into the site that match neither a
    page nor such a file are reported: they will be broken once the site is published.
    """
    base = base_url(settings)
    for web in site.issues:
        refs = [href for href, _ in web.essay.links] + [src for src, _, _ in web.essay.images]
        for url in refs:
            if not url.startswith(base):
                continue
            rel = unquote(urlsplit(url[len(base):]).path)
            page = rel + "index.html" if rel == "" or rel.endswith("/") else rel
            if page in site.files:
                continue
            source = local_file(settings, rel)
            if source is not None:
                site.files[rel] = source.read_bytes()
            else:
                site.warnings.append(f"{web.issue.path}: links to {url}, which is not in the archive")


@dataclass
class SiteReport:
    """What write_site did, for the CLI to present. Paths are relative to `folder`."""

    folder: Path
    home_url: str
    issues: int
    drafts: int
    written: list[str]
    unchanged: list[str]
    removed: list[str]
    warnings: list[str]


def write_site(settings: Settings, out_dir: Path, include_drafts: bool = False) -> SiteReport:
    """Render the archive and bring out_dir up to date with it.

    Changed files are replaced atomically, unchanged ones left alone, and pages this command wrote
    before but no longer builds (an issue removed or back to draft) are deleted. Files it did not
    write are never overwritten or deleted.
    """
    from newsletter.output import update_folder

    _refuse_out_dir(settings, out_dir)
    site = build_site(settings, include_drafts)
    update = update_folder(out_dir, site.files)
    drafts = sum(1 for w in site.issues if w.draft)
    return SiteReport(
        folder=out_dir, home_url=base_url(settings), issues=len(site.issues) - drafts, drafts=drafts,
        written=update.written, unchanged=update.unchanged, removed=update.removed,
        warnings=site.warnings,
    )


def _refuse_out_dir(settings: Settings, out_dir: Path) -> None:
    """The archive needs a folder of its own, not the newsletter's folder or one inside its sources."""
    out, root = out_dir.resolve(), settings.root.resolve()
    sources = (settings.issues_dir.resolve(), (root / "templates").resolve())
    if root.is_relative_to(out) or any(out.is_relative_to(s) for s in sources):
        raise NewsletterError(
            f"{out_dir}: the archive cannot be written here: it holds or is part of the newsletter's own files",
            hint="choose a folder of its own, e.g. --out site",
        )
