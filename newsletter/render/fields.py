"""Per-recipient fields in an essay: `{{ first_name }}`, `{{ name }}`, `{{ email }}`.

Each may carry a fallback for an empty value: `{{ first_name | default("friend") }}` (single,
double or typographic quotes). render.render_issue turns every field in the essay's prose into a
placeholder token (never one inside `code` or a code block, never one in an attribute), and
message.substitutions fills the tokens per recipient in the same single pass as the templates'
fields: HTML-escaped in the HTML part, literal in the text part, and through SendGrid's
substitutions. The fallback travels inside the token (base64url), so a rendered email needs no
side table: `%%FIRST_NAME~ZnJpZW5k%%` is first_name, or "friend" when the name is empty.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable

FIRST_NAME_FALLBACK = "friend"  # first_name when a reader gave no name, here and in the templates
ESSAY_FIELD_NAMES = ("first_name", "name", "email")
_NAMES = "|".join(ESSAY_FIELD_NAMES)
# A fallback is one line of plain text: no braces, quote marks, or Markdown that would turn part
# of it into markup (*, _, `, [, ], <, >, backslash) and so hide the field from the essay's HTML.
_PLAIN = r"""[^"“”‘’'{}\n*_`\[\]<>\\]*"""
_FALLBACK = rf"""(?:"(?P<dq>{_PLAIN})"|'(?P<sq>{_PLAIN})'|[“‘](?P<tq>{_PLAIN})[”’])"""
ESSAY_FIELD: re.Pattern[str] = re.compile(
    r"\{\{\s*(?P<field>" + _NAMES + r")\s*(?:\|\s*default\s*\(\s*" + _FALLBACK + r"\s*\)\s*)?\}\}"
)
"""One allowed field expression in an essay's Markdown (what is not matched is an error)."""

# The same in the essay's HTML, where quotes may be typographic or written as entities.
_Q = r"""(?:"|'|“|”|‘|’|&quot;|&#34;|&#39;|&#x27;)"""
_HTML_FALLBACK = r"""(?P<fallback>(?:[^"'“”‘’{}<>\n&]|&(?!quot;|#34;|#39;|#x27;))*)"""
_HTML_FIELD = re.compile(
    r"\{\{\s*(?P<field>" + _NAMES + r")\s*(?:\|\s*default\s*\(\s*" + _Q + _HTML_FALLBACK + _Q + r"\s*\)\s*)?\}\}"
)
_HTML_PIECES = re.compile(r"<!--.*?-->|<[^>]*>|[^<]+|<", re.DOTALL)
_LITERAL_TAGS = ("code", "pre", "script", "style", "textarea")
_OPENING = re.compile(r"<\s*([a-zA-Z][a-zA-Z0-9]*)")
_CLOSING = re.compile(r"<\s*/\s*([a-zA-Z][a-zA-Z0-9]*)")
TOKEN: re.Pattern[str] = re.compile(
    r"%%(?P<text>TEXT_)?(?P<field>FIRST_NAME|NAME|EMAIL)~(?P<fallback>[A-Za-z0-9_-]*)%%"
)
"""A field token that carries a fallback (fields without one use render's PLACEHOLDERS)."""


def field_token(field: str, fallback: str | None, *, text: bool = False) -> str:
    """The placeholder for one field; with a fallback, the fallback rides in the token."""
    prefix = "TEXT_" if text else ""
    if fallback is None:
        return f"%%{prefix}{field.upper()}%%"
    packed = base64.urlsafe_b64encode(fallback.encode("utf-8")).decode("ascii").rstrip("=")
    return f"%%{prefix}{field.upper()}~{packed}%%"


FIELDS = ("email", "name", "first_name", "unsubscribe_url")
# The HTML and text parts get different tokens: the HTML's values are HTML-escaped, the text's not.
# The essay's own fields ({{ first_name }}...) become the same tokens. Here, not in compose, so that
# SendGrid's body-building worker fills them without importing the renderer (Jinja2, lxml...).
PLACEHOLDERS = {field: field_token(field, None) for field in FIELDS}
TEXT_PLACEHOLDERS = {field: field_token(field, None, text=True) for field in FIELDS}


def unpack_fallback(packed: str) -> str:
    """The fallback text a token carries."""
    return base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)).decode("utf-8")


def essay_html_tokens(essay_html: str) -> str:
    """Turn the fields in the essay's prose into HTML placeholder tokens.

    Text inside code, pre (and script/style, never there after sanitising) and every tag's
    attributes stay as written: a field in a code sample is shown, not filled.
    """
    return _in_prose(essay_html, _html_token)


def _in_prose(essay_html: str, replace: Callable[[re.Match[str]], str]) -> str:
    """Apply `replace` to every field in the HTML's text outside tags and code."""
    out: list[str] = []
    literal = 0
    for piece in _HTML_PIECES.finditer(essay_html):
        chunk = piece.group(0)
        if chunk.startswith("<") and len(chunk) > 1:
            literal = max(0, literal + _literal_step(chunk))
            out.append(chunk)
        else:
            out.append(chunk if literal else _HTML_FIELD.sub(replace, chunk))
    return "".join(out)


def _literal_step(tag: str) -> int:
    """+1 for an opening code/pre tag, -1 for a closing one, 0 otherwise."""
    closing = _CLOSING.match(tag)
    if closing:
        return -1 if closing.group(1).lower() in _LITERAL_TAGS else 0
    opening = _OPENING.match(tag)
    if opening and opening.group(1).lower() in _LITERAL_TAGS and not tag.rstrip().endswith("/>"):
        return 1
    return 0


def _html_token(match: re.Match[str]) -> str:
    fallback = match.group("fallback")
    return field_token(match.group("field"), None if fallback is None else html.unescape(fallback))


def essay_text_tokens(essay_text: str) -> str:
    """Turn the HTML tokens that essay_html_tokens left in the essay's text part into text tokens."""
    return _HTML_TO_TEXT.sub(lambda m: "%%TEXT_" + m.group(1), essay_text)


_HTML_TO_TEXT = re.compile(r"%%((?:FIRST_NAME|NAME|EMAIL)(?:~[A-Za-z0-9_-]*)?%%)")


def fields_as_fallbacks(essay_html: str) -> str:
    """The essay with every field shown as its fallback (for pages read by no one in particular).

    A field without a fallback shows nothing but `first_name`, which reads "friend", as in the
    templates. The archive and the feed may use this; the email never does.
    """
    def fallback(match: re.Match[str]) -> str:
        value = match.group("fallback")
        if value is not None:
            return value
        return FIRST_NAME_FALLBACK if match.group("field") == "first_name" else ""

    return _in_prose(essay_html, fallback)
