"""One issue as the archive shows it: its page's essay, the feed's essay, a summary, a reading time.

Both the pages (newsletter.archive.site) and the feed (newsletter.archive.feed) are made from these.
"""

from __future__ import annotations

import html as htmlmod
import re
from dataclasses import dataclass, replace

from newsletter.config import Settings
from newsletter.models import PUBLISHED_STATUSES, Issue
from newsletter.render import Essay, base_url, fields_as_fallbacks, render_essay, typeset, web_url

WORDS_PER_MINUTE = 230
DESCRIPTION_CHARS = 200


@dataclass(frozen=True)
class WebIssue:
    """One issue prepared for the web: its page's essay, the feed's essay and its summary."""

    issue: Issue
    url: str  # canonical, absolute
    essay: Essay  # for the page: in-page links stay relative (#fn:1)
    feed_html: str  # for the feed: every link absolute
    description: str
    minutes: int

    @property
    def draft(self) -> bool:
        return self.issue.status not in PUBLISHED_STATUSES


def web_issue(settings: Settings, issue: Issue) -> WebIssue:
    """Prepare one issue for its page and the feed."""
    issue = typeset(issue)  # the same curly quotes and dashes as the email's title
    url = web_url(settings, issue.slug)
    essay = render_essay(issue.body, base_url(settings), url, for_email=False)
    # A page is read by no one in particular: each per-recipient field shows its fallback.
    essay = replace(essay, html=fields_as_fallbacks(essay.html))
    # The feed gets the email's rendering: a feed reader has no page to resolve "#fn:1" against.
    feed_html = fields_as_fallbacks(render_essay(issue.body, base_url(settings), url, for_email=True).html)
    text = _plain(essay.html)
    return WebIssue(
        issue=issue, url=url, essay=essay, feed_html=feed_html,
        description=issue.subtitle or issue.preheader or shorten(text, DESCRIPTION_CHARS),
        minutes=max(1, round(len(text.split()) / WORDS_PER_MINUTE)),
    )


def _plain(fragment: str) -> str:
    """The visible text of an HTML fragment, whitespace collapsed (footnote marks dropped)."""
    fragment = re.sub(r"<sup\b.*?</sup>|<a class=\"footnote-backref\".*?</a>", "", fragment, flags=re.S)
    return " ".join(htmlmod.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def shorten(text: str, limit: int) -> str:
    """text cut at a word to fit limit characters, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:.–—-")
    return cut + "…"
