"""An issue's Markdown -> a safe HTML fragment, for the email and the web archive alike.

Python-Markdown with the extensions an essayist needs, then nh3 (the ammonia sanitiser) so that
raw HTML in an essay can never carry <script>, <iframe>, forms, event handlers or javascript: URLs
into an email. Relative links and images are resolved against [newsletter] url. Inline
`style` attributes are kept, declaration by declaration, only when they cannot run or fetch
anything (no expression(), no url() but http(s), no behaviours, no CSS escapes or comments).
"""

from __future__ import annotations

import html as htmlmod
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


# CSS that can run script (old IE), bind behaviour or fetch from a scheme other than http(s).
_STYLE_DANGER = re.compile(r"expression|javascript:|vbscript:|behavior|binding|@import|[\\]|/\*|<|>", re.I)
_STYLE_URL = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.I | re.S)
_STYLE_PROPERTY = re.compile(r"^-?[a-zA-Z][a-zA-Z-]*$")
_FORBIDDEN_PROPERTIES = {"position", "behavior", "-moz-binding", "-ms-behavior", "content"}


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


class _HeaderScopes(Treeprocessor):
    """A table's header cells say what they head (scope="col"), for screen readers."""

    def run(self, root: etree.Element) -> None:
        for head in root.iter("thead"):
            for cell in head.iter("th"):
                cell.attrib.setdefault("scope", "col")


class PullQuoteExtension(Extension):
    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802 - Markdown's API
        md.treeprocessors.register(_PullQuotes(md), "pullquote", 5)  # after inline processing
        md.treeprocessors.register(_HeaderScopes(md), "header-scopes", 4)


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
    refs: list[tuple[str, str, str]] = field(default_factory=list)  # (tag, as written, resolved), all a/img
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

    refs: list[tuple[str, str, str]] = []

    def keep(tag: str, attr: str, value: str) -> str | None:
        if attr.startswith("on"):
            return None
        if attr == "style":
            kept = safe_style(value)
            if _STYLE_DANGER.search(value) or "url(" in value.lower() and kept != value:
                problems.append("an unsafe style declaration was removed")
            return kept
        if attr in ("href", "src"):
            resolved = _resolve(value, base_url, page_url, for_email)
            refs.append((tag, value.strip(), resolved or ""))
            return resolved
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
    essay = Essay(html=safe, problems=list(dict.fromkeys(problems)), refs=refs)
    return _finish(essay, for_email)


def safe_style(value: str) -> str | None:
    """Keep the declarations of a style attribute that cannot run script or fetch unsafely.

    Declarations are split naively on ';' (a ';' inside url() drops that declaration, never
    more than it). Escapes and comments are refused outright: they are how filters are evaded.
    """
    kept = []
    for declaration in value.split(";"):
        prop, colon, val = declaration.partition(":")
        prop, val = prop.strip().lower(), val.strip()
        if not colon or not _STYLE_PROPERTY.match(prop) or prop in _FORBIDDEN_PROPERTIES:
            continue
        if _STYLE_DANGER.search(val) or not all(_safe_css_url(m.group(2)) for m in _STYLE_URL.finditer(val)):
            continue
        if "url(" in val.lower() and not _STYLE_URL.search(val):
            continue
        kept.append(f"{prop}: {val}")
    return "; ".join(kept) or None


def _safe_css_url(url: str) -> bool:
    return urlsplit(url.strip()).scheme.lower() in ("http", "https")


# Python-Markdown's own processors, all but the paragraph (tests check none is left over).
BLOCK_PROCESSORS = ("empty", "indent", "code", "hashheader", "setextheader", "hr", "olist", "ulist", "quote",
                     "reference")
INLINE_PATTERNS = ("backtick", "escape", "reference", "link", "image_link", "image_reference", "short_reference",
                    "short_image_ref", "autolink", "automail", "linebreak", "html", "entity", "em_strong")


def smarten(text: str) -> str:
    """Give one line of plain text the essay's typography: curly quotes, dashes, ellipses.

    The title, subtitle, subject and preheader are plain text, not Markdown: only the smarty
    extension runs, so `*`, `#` or `[` in a title stay as typed.
    """
    text = " ".join(text.split())
    if not text:
        return text
    md = markdown.Markdown(extensions=["smarty"], extension_configs={"smarty": {"smart_angled_quotes": False}})
    for name in BLOCK_PROCESSORS:
        md.parser.blockprocessors.deregister(name, strict=False)
    for name in INLINE_PATTERNS:
        md.inlinePatterns.deregister(name, strict=False)
    out = md.convert(htmlmod.escape(text, quote=False)).strip()
    return htmlmod.unescape(out.removeprefix("<p>").removesuffix("</p>"))


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")


def prose_lines(body: str) -> list[str]:
    """The essay's Markdown lines with code blanked out (same line count, same columns).

    Fenced blocks and inline code spans are samples, not prose: a `TODO` or `{{ x }}` in them
    is text to show. Checks that report `file:line` search these lines.
    """
    out: list[str] = []
    fence = ""
    for line in body.splitlines():
        opening = _FENCE.match(line)
        if fence:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = ""
            out.append("")
        elif opening:
            fence = opening.group(1)
            out.append("")
        else:
            out.append(_CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line))
    return out


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
    def fix_img(match: re.Match[str]) -> str:
        attrs = dict(_ATTR.findall(match.group(0)))
        given = attrs.get("width", "")
        attrs["width"] = str(pixel_width(given))
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


def pixel_width(given: str) -> int:
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
