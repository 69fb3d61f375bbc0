"""The reader service's pages: the newsletter's look (web.css + readers.css, inlined), no script.

The stylesheet is inlined once per process, and the Content-Security-Policy allows exactly that
<style> by its SHA-256 hash, so a page can load nothing and run nothing. A newsletter's own
templates/ override every page (readers_*.html) and the stylesheets, as they do the archive's.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup

from newsletter.config import Settings
from newsletter.render import base_url, render_template, template_env, template_source


def service_path(settings: Settings) -> str:
    """The path every route hangs under: the public base URL's path, with one trailing slash ("/" at least)."""
    path = urlsplit(settings.readers_url).path if settings.readers_url else "/"
    return "/" + path.strip("/") + "/" if path.strip("/") else "/"


def content_security_policy(style_hash: str) -> str:
    """No script, no fetch, no framing; the one inline stylesheet by its hash; forms post only here."""
    return (f"default-src 'none'; style-src '{style_hash}'; img-src data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")


class Pages:
    """Render the service's pages with one inlined stylesheet."""

    def __init__(self, settings: Settings) -> None:
        self.env = template_env(settings)
        css = template_source(self.env, "web.css").strip() + "\n" + template_source(self.env, "readers.css").strip()
        self.style = "\n" + css + "\n"  # exactly what sits between <style> and </style>
        digest = hashlib.sha256(self.style.encode("utf-8")).digest()
        self.csp = content_security_policy("sha256-" + base64.b64encode(digest).decode("ascii"))
        nl = settings.newsletter
        path = service_path(settings)
        self.common: dict[str, Any] = {
            "lang": nl.language, "dir": nl.direction, "newsletter_name": nl.name, "description": nl.description,
            "postal_address": nl.postal_address, "home_url": base_url(settings) if nl.url else "",
            "css": Markup(self.style), "subscribe_action": path + "subscribe",
            "double_opt_in": settings.readers.double_opt_in, "confirm_hours": f"{settings.readers.confirm_hours:g}",
        }

    def render(self, template: str, title: str, **context: Any) -> str:
        """One page: readers_<template>.html with the common fields and `context`."""
        return render_template(self.env, f"readers_{template}.html", {**self.common, "page_title": title, **context})
