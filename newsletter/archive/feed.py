"""The archive's machine-readable files: the Atom feed, sitemap.xml and robots.txt.

Built with lxml, never by pasting strings, so every title and essay is escaped correctly.
Times come from the issues' dates alone (midnight UTC), never from the clock, so the bytes only
change when an issue does.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from lxml import etree

from newsletter.config import Settings
from newsletter.render import base_url

if TYPE_CHECKING:
    from newsletter.archive.entries import WebIssue

ATOM = "http://www.w3.org/2005/Atom"
SITEMAP = "http://www.sitemaps.org/schemas/sitemap/0.9"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
EPOCH = dt.date(1970, 1, 1)  # `updated` of a feed with no entries: Atom requires one
# Characters XML 1.0 cannot carry at all (a stray form feed pasted into an essay, say).
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def timestamp(date: dt.date) -> str:
    """An issue date as an RFC 3339 time: midnight UTC."""
    return f"{date.isoformat()}T00:00:00Z"


def entry_id(settings: Settings, issue_date: dt.date, slug: str) -> str:
    """A tag: URI (RFC 4151) for an issue: stable even if the site moves to another path."""
    host = urlsplit(settings.newsletter.url).hostname or "localhost"
    return f"tag:{host},{issue_date.isoformat()}:{slug}"


def _add(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    child = etree.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    if text is not None:
        child.text = NOT_XML.sub("", text)
    return child


def atom_feed(settings: Settings, issues: list[WebIssue]) -> bytes:
    """The Atom feed: the newest [archive] feed_entries issues, full content, absolute URLs."""
    nl, base = settings.newsletter, base_url(settings)
    limit = settings.archive.feed_entries
    entries = issues[:limit] if limit else issues
    feed = etree.Element(f"{{{ATOM}}}feed", nsmap={None: ATOM})
    feed.set(XML_LANG, nl.language)
    _add(feed, "id", base)
    _add(feed, "title", nl.name)
    if nl.description:
        _add(feed, "subtitle", " ".join(nl.description.split()))
    _add(feed, "link", rel="self", type="application/atom+xml", href=base + "feed.xml")
    _add(feed, "link", rel="alternate", type="text/html", href=base)
    _add(feed, "updated", timestamp(max((w.issue.date for w in entries), default=EPOCH)))
    _add(_add(feed, "author"), "name", nl.author or nl.name)
    _add(feed, "generator", "newsletter")
    for web in entries:
        _entry(settings, feed, web)
    return etree.tostring(feed, xml_declaration=True, encoding="utf-8", pretty_print=True)


def _entry(settings: Settings, feed: etree._Element, web: WebIssue) -> None:
    issue = web.issue
    entry = _add(feed, "entry")
    _add(entry, "id", entry_id(settings, issue.date, issue.slug))
    _add(entry, "title", issue.title)
    _add(entry, "link", rel="alternate", type="text/html", href=web.url)
    _add(entry, "published", timestamp(issue.date))
    _add(entry, "updated", timestamp(issue.date))
    _add(_add(entry, "author"), "name", issue.author or settings.newsletter.author or settings.newsletter.name)
    if web.description:
        _add(entry, "summary", web.description)
    _add(entry, "content", web.feed_html, type="html")


def sitemap(settings: Settings, issues: list[WebIssue]) -> bytes:
    """sitemap.xml: the index and every published issue's page."""
    urlset = etree.Element(f"{{{SITEMAP}}}urlset", nsmap={None: SITEMAP})
    newest = max((w.issue.date for w in issues), default=None)
    for loc, date in [(base_url(settings), newest)] + [(w.url, w.issue.date) for w in issues]:
        url = etree.SubElement(urlset, f"{{{SITEMAP}}}url")
        etree.SubElement(url, f"{{{SITEMAP}}}loc").text = loc
        if date is not None:
            etree.SubElement(url, f"{{{SITEMAP}}}lastmod").text = date.isoformat()
    return etree.tostring(urlset, xml_declaration=True, encoding="utf-8", pretty_print=True)


def robots_txt(settings: Settings) -> bytes:
    """robots.txt: everything may be crawled; where the sitemap is.

    Crawlers read robots.txt only at a host's root: under a sub-path it is a template to copy.
    """
    return f"User-agent: *\nAllow: /\n\nSitemap: {base_url(settings)}sitemap.xml\n".encode()
