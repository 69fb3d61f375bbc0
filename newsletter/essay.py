"""An issue's Markdown -> a safe HTML fragment, for the email and the web archive alike.

Python-Markdown with the extensions an essayist needs, then nh3 (the ammonia sanitiser) so that
raw HTML in an essay can never carry <script>, <iframe>, forms, event handlers or javascript: URLs
into an email. Relative links and images are resolved against [newsletter] url.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as etree
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import markdown
import nh3
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

COLUMN_WIDTH = 600  # px: the email's content column; images wider than this are scaled down
_PULLQUOTE_MARK = re.compile(r"^\s*\[!pull-?quote\]\s*", re.IGNORECASE)

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd", "del",
    "details", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span",
    "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {
    "*": {"class", "id", "title", "lang", "dir", "style", "role", "align"},
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start", "type"},
    "abbr": {"title"},
}
# Tags whose content goes too, not only the tag (nh3 keeps the text of other unknown tags).
REMOVED_WITH_CONTENT = {"script", "style", "iframe", "form", "object", "embed", "noscript", "template",
                        "select", "textarea", "button", "svg", "math"}


class _PullQuotes(Treeprocessor):
    """`> [!pullquote]` blockquotes become <blockquote class="pullquote">."""

    def run(self, root: etree.Element) -> None:
        for quote in root.iter("blockquote"):
            first = quote.find("p")
            if first is not None and first.text and _PULLQUOTE_MARK.match(first.text):
                first.text = _PULLQUOTE_MARK.sub("", first.text, count=1)
                if not first.text.strip() and len(first) and first[0].tag == "br":
                    first.text = (first[0].tail or "").lstrip()
                    first.remove(first[0])
                quote.set("class", (quote.get("class", "") + " pullquote").strip())


class PullQuoteExtension(Extension):
    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802 - Markdown's API
        md.treeprocessors.register(_PullQuotes(md), "pullquote", 5)  # after inline processing


def _markdown() -> markdown.Markdown:
    return markdown.Markdown(
        extensions=[
            "footnotes", "tables", "fenced_code", "attr_list", "def_list", "abbr", "sane_lists",
            "md_in_html", "toc", "smarty", PullQuoteExtension(),
        ],
        extension_configs={
            "smarty": {"smart_angled_quotes": False},  # straight quotes only: curly ones are left alone
            "footnotes": {"BACKLINK_TEXT": "↩", "SUPERSCRIPT_TEXT": "{}"},
            "toc": {"permalink": False},
        },
        output_format="html",
    )


@dataclass
class Essay:
    """A rendered essay: the safe HTML fragment and what a checker needs to know about it."""

    html: str
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, link text)
    images: list[tuple[str, str, str]] = field(default_factory=list)  # (src, alt, width)
    problems: list[str] = field(default_factory=list)  # e.g. a javascript: link that was removed


def render_essay(body: str, base_url: str, page_url: str, *, for_email: bool = True) -> Essay:
    """Render Markdown to a sanitised fragment with absolute links.

    base_url resolves relative links and images; page_url is the issue's web page, where
    in-page links (#fn:1) point in an email, since most mail clients cannot follow them.
    """
    raw = _markdown().convert(body)
    problems: list[str] = []
    if re.search(r"""(href|src)\s*=\s*["']?\s*javascript\s*:""", raw, re.IGNORECASE):
        problems.append("a javascript: URL was removed")

    def keep(tag: str, attr: str, value: str) -> str | None:
        if attr.startswith("on"):
            return None
        if attr in ("href", "src"):
            return _resolve(value, base_url, page_url, for_email)
        return value

    safe = nh3.clean(
        raw,
        tags=ALLOWED_TAGS,
        clean_content_tags=REMOVED_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=keep,
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
        strip_comments=True,
    )
    essay = Essay(html=safe, problems=problems)
    return _finish(essay, for_email)


def _resolve(value: str, base_url: str, page_url: str, for_email: bool) -> str | None:
    value = value.strip()
    if not value:
        return value
    if value.startswith("#"):
        return page_url + value if for_email else value
    scheme = urlsplit(value).scheme.lower()
    if scheme in ("", "http", "https"):
        return urljoin(base_url, value)
    return value if scheme == "mailto" else None


_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_A = re.compile(r"<a\b([^>]*)>(.*?)</a>", re.IGNORECASE | re.DOTALL)
_ATTR = re.compile(r'([a-zA-Z-]+)="([^"]*)"')


def _finish(essay: Essay, for_email: bool) -> Essay:
    """Give every image an integer width, drop footnote back-links in email, collect links."""
    import html as htmlmod

    def fix_img(match: re.Match[str]) -> str:
        attrs = dict(_ATTR.findall(match.group(0)))
        given = attrs.get("width", "")
        attrs["width"] = str(_pixel_width(given))
        attrs.pop("height", None)  # keep proportions once the width may have changed
        essay.images.append((htmlmod.unescape(attrs.get("src", "")), htmlmod.unescape(attrs.get("alt", "")), given))
        return "<img " + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + ">"

    html = _IMG.sub(fix_img, essay.html)
    if for_email:
        html = re.sub(r'(?:&nbsp;|\s)*<a class="footnote-backref"[^>]*>.*?</a>', "", html)
    for attrs, text in _A.findall(html):
        href = dict(_ATTR.findall(attrs)).get("href", "")
        plain = htmlmod.unescape(re.sub(r"<[^>]+>", "", text)).strip()
        essay.links.append((htmlmod.unescape(href), plain))
    essay.html = html
    return essay


def _pixel_width(given: str) -> int:
    """An <img> width as whole pixels within the column: '300px' -> 300, '50%' -> 300, none -> 600."""
    given = given.strip().lower()
    if given.endswith("%"):
        try:
            return max(1, min(COLUMN_WIDTH, round(COLUMN_WIDTH * float(given[:-1]) / 100)))
        except ValueError:
            return COLUMN_WIDTH
    try:
        return max(1, min(COLUMN_WIDTH, round(float(given.removesuffix("px")))))
    except ValueError:
        return COLUMN_WIDTH
