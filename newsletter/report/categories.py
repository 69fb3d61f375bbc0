"""The SendGrid category that names one issue: how a send tags it and how `report` finds it.

A leaf: it imports nothing of ours, so the SendGrid body builder (providers) and the report can
both use it without a cycle. SendGrid's limits: at most 10 categories per message, each at most
255 characters; a category is shown in SendGrid's UI and URLs, so it is kept to printable ASCII.
"""

from __future__ import annotations

import re

PREFIX = "issue:"
MAX_LENGTH = 255  # SendGrid's limit for one category name
_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")


def category_for(slug: str) -> str:
    """The per-issue category for a slug: 'issue:<slug>', printable ASCII, at most 255 characters.

    Slugs are already lower-case ASCII (issues.SLUG_PATTERN); anything else is folded to '-' so a
    hand-edited ledger can never produce a category SendGrid would refuse.
    """
    safe = _UNSAFE.sub("-", slug.strip()).strip("-") or "untitled"
    return (PREFIX + safe)[:MAX_LENGTH]
