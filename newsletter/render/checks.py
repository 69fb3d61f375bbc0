"""Preflight checks: what a careful editor looks at before pressing send."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import html as lxml_html

from newsletter.config import Settings
from newsletter.models import CheckResult, Issue, ProviderName, RenderedEmail
from newsletter.render.essay import prose_lines
from newsletter.render.fields import ESSAY_FIELD
from newsletter.render.message import build_message, has_unsubscribe, one_click_https, sample_recipient
from newsletter.render.references import check_refs, line_of

# Sizes are bytes of the HTML part as sent (transfer-encoded, what Gmail counts), in KB of 1000
# bytes. Gmail clips at "102 KB"; read as 102,000 bytes, a message under it is under the clip
# whichever way Gmail counts a KB.
KB = 1000
GMAIL_CLIP_BYTES = 102 * KB
# What `newsletter init` writes (scaffold.NEWSLETTER_TOML, the init --name default): a real send
# with one of these would go out under someone else's name and links.
INIT_PLACEHOLDERS = {
    "sender": "you@example.com", "url": "https://example.com/", "unsubscribe": "unsubscribe@example.com",
    "name": "My Newsletter",
}
STYLE_LIMIT_BYTES = 16 * 1024
SUBJECT_RANGE = (10, 78)
VAGUE_LINK_TEXT = {"click here", "here", "click", "link", "this", "this link", "read more", "more", "go"}
_PLACEHOLDER_WORD = re.compile(r"\b(TK|TODO|FIXME|XXX)\b")
_TEMPLATE_LEFTOVER = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|%%[A-Z_]+(?:~[A-Za-z0-9_-]*)?%%")
_BRACES = re.compile(r"\{\{.*?\}\}|\{%.*?%\}")
_CODE = re.compile(r"<(pre|code)\b[^>]*>.*?</\1>", re.IGNORECASE | re.DOTALL)


def kb(n: int) -> str:
    """A byte count in KB (1000 bytes), as check, build and the preview all show sizes."""
    return f"{n / KB:.1f} KB"


@dataclass
class CheckReport:
    """The findings for one issue, and the size figures shown with them."""

    results: list[CheckResult] = field(default_factory=list)
    html_bytes: int = 0  # the HTML part as transmitted (quoted-printable), what Gmail measures
    message_bytes: int = 0

    @property
    def errors(self) -> list[CheckResult]:
        return [r for r in self.results if r.level == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if r.level == "warning"]

    def add(self, level: str, code: str, message: str) -> None:
        self.results.append(CheckResult(level, code, message))

    @property
    def size_summary(self) -> str:
        """The HTML part's size against Gmail's clip, worded the same everywhere."""
        margin = GMAIL_CLIP_BYTES - self.html_bytes
        room = f"{kb(margin)} to spare" if margin >= 0 else f"{kb(-margin)} over"
        return f"HTML part as sent is {kb(self.html_bytes)} of Gmail's {GMAIL_CLIP_BYTES // KB} KB clip ({room})"


def transmitted_sizes(rendered: RenderedEmail, settings: Settings) -> tuple[int, int, str, str]:
    """Build the sample message; return (html part bytes, message bytes, html, text) as sent."""
    recipient = sample_recipient(settings, secret="preview")
    msg = build_message(rendered, recipient, settings, secret="preview")
    html_part, text_part = msg.get_body(("html",)), msg.get_body(("plain",))
    assert html_part is not None and text_part is not None
    html_bytes = len(str(html_part.get_payload()).encode())
    return html_bytes, len(msg.as_bytes()), str(html_part.get_content()), str(text_part.get_content())


def run_checks(issue: Issue, rendered: RenderedEmail, settings: Settings) -> CheckReport:
    """Run every preflight check over a rendered issue."""
    report = CheckReport()
    report.html_bytes, report.message_bytes, html, text = transmitted_sizes(rendered, settings)
    _check_front_matter(issue, report)
    _check_subject(rendered, report)
    _check_size(report)
    _check_body_words(issue, report)
    _check_html(html, text, issue, report)
    _check_links(rendered, report)
    _check_images(issue, rendered, report)
    check_refs(issue, rendered, settings, report.add)
    _check_compliance(settings, report)
    _check_placeholders(settings, report)
    for problem in rendered.problems:
        report.add("warning", "sanitised", f"removed from the essay: {problem}")
    return report


def _check_front_matter(issue: Issue, report: CheckReport) -> None:
    if issue.status == "draft":
        report.add("warning", "status", f"{issue.path}: status is draft (set 'status: ready' when it is)")
    if issue.status == "sent":
        report.add("warning", "status", f"{issue.path}: status is sent: this issue has gone out already")
    if not issue.effective_preheader:
        report.add("warning", "preheader", "no preheader or subtitle: inboxes will preview the first words")
    elif len(issue.effective_preheader) > 150:
        n = len(issue.effective_preheader)
        report.add("warning", "preheader", f"preheader is {n} characters; inboxes show about 90-150")


def _check_subject(rendered: RenderedEmail, report: CheckReport) -> None:
    n = len(rendered.subject)
    low, high = SUBJECT_RANGE
    if n < low or n > high:
        report.add("warning", "subject", f"subject is {n} characters (aim for {low}-{high}): {rendered.subject!r}")
    else:
        report.add("ok", "subject", f"subject length {n} characters")


def _check_size(report: CheckReport) -> None:
    margin = GMAIL_CLIP_BYTES - report.html_bytes
    level = "error" if margin < 0 else "warning" if margin < 10 * KB else "ok"
    report.add(level, "size", report.size_summary + (": Gmail will clip it" if margin < 0 else ""))


def _check_body_words(issue: Issue, report: CheckReport) -> None:
    """TK, TODO and unknown {{ fields }} in the prose (code is a sample, not prose)."""
    for offset, line in enumerate(prose_lines(issue.body)):
        where = f"{issue.path}:{issue.body_line + offset}"
        match = _PLACEHOLDER_WORD.search(line)
        if match:
            report.add("error", "placeholder", f"{where}: leftover placeholder {match.group(1)!r}")
        for braces in _BRACES.finditer(line):
            if not ESSAY_FIELD.fullmatch(braces.group(0)):
                report.add("error", "template", f"{where}: unknown field {braces.group(0)!r} (an essay may use "
                           "{{ first_name }}, {{ name }} or {{ email }}, with | default(\"...\"); "
                           "put code in `backticks`)")


def _check_html(html: str, text: str, issue: Issue, report: CheckReport) -> None:
    doc = lxml_html.document_fromstring(html)
    if doc.xpath("//script|//iframe|//form|//object|//embed"):
        report.add("error", "unsafe", "the HTML contains script, iframe, form or embedded objects")
    style_bytes = sum(len((s.text or "").encode()) for s in doc.xpath("//style"))
    if style_bytes > STYLE_LIMIT_BYTES:
        report.add("error", "style", f"<style> is {style_bytes} bytes; Gmail drops styles over 16 KB")
    # Braces the essay shows in code, or that _check_body_words reported with their line, are not
    # the templates' leftovers.
    known = {m.group(0) for m in _BRACES.finditer(issue.body)}
    for part, content in (("HTML", _CODE.sub("", html)), ("text", text)):
        left = next((m for m in _TEMPLATE_LEFTOVER.finditer(content) if m.group(0) not in known), None)
        if left:
            report.add("error", "template", f"unresolved template field {left.group(0)!r} in the {part} part")
    for el in doc.xpath("//a[@href]|//img[@src]"):
        url = el.get("href") or el.get("src") or ""
        if url.startswith("<%") or url.startswith(("https://", "mailto:")):
            continue
        report.add("error" if not url.startswith("http://") else "warning", "link",
                   f"{'link' if el.tag == 'a' else 'image'} {url!r} is not an absolute https: or mailto: URL")


def _check_links(rendered: RenderedEmail, report: CheckReport) -> None:
    for href, text in zip(rendered.links, rendered.link_texts, strict=False):
        if not href:
            report.add("error", "link", f"a link with text {text!r} has no address")
        elif not text:
            report.add("error", "link", f"the link to {href} has no text")
        elif text.lower().strip(" .!:") in VAGUE_LINK_TEXT:
            report.add("warning", "link", f"vague link text {text!r} (to {href}): say where it goes")


def _check_images(issue: Issue, rendered: RenderedEmail, report: CheckReport) -> None:
    """Alt text for every image; a width for those whose file is not here to measure."""
    written = {resolved: as_written for tag, as_written, resolved in rendered.refs if tag == "img"}
    for src, alt, width in rendered.images:
        where = line_of(issue, written.get(src, src))
        if not alt.strip():
            report.add("error", "image", f"{where}: image {src} has no alt text (add it: ![what it shows](...))")
        if not width.strip() and src.startswith(("http://", "https://")) and src == written.get(src, src):
            report.add("warning", "image", f"{where}: image {src} has no width; it is shown 600px wide "
                                           "(add {width=N} after it)")


def _check_compliance(settings: Settings, report: CheckReport) -> None:
    if not has_unsubscribe(settings):
        report.add("error", "unsubscribe", f"{settings.config_path}: no unsubscribe method: set [readers] url "
                                           "(the reader service), or [delivery] unsubscribe_mailto or unsubscribe_url")
    elif not _https_one_click(settings):
        report.add("warning", "one_click", f"{settings.config_path}: no https one-click unsubscribe (RFC 8058): "
                   "Gmail and Yahoo require one from bulk senders, and a mailto: alone does not count; set "
                   "[readers] url to the reader service (`newsletter serve`), which records it for you")
    if not settings.newsletter.postal_address.strip():
        report.add("warning", "postal_address", f"{settings.config_path}: [newsletter] postal_address is empty "
                                                "(anti-spam laws ask for one in every email)")


def _https_one_click(settings: Settings) -> bool:
    """Whether List-Unsubscribe carries an https link with List-Unsubscribe-Post (what Gmail and Yahoo ask)."""
    url = settings.readers_url or settings.delivery.unsubscribe_url
    return one_click_https(settings) and url.lower().startswith("https://")


def _check_placeholders(settings: Settings, report: CheckReport) -> None:
    """The example values `newsletter init` writes: errors for a real send, warnings for the outbox."""
    real = settings.delivery.provider != ProviderName.OUTBOX  # the outbox only writes files: a rehearsal
    level = "error" if real else "warning"
    why = (f"set a real value before sending through {settings.delivery.provider}" if real
           else "fine for the outbox; set a real value before sending through smtp or sendgrid")
    nl, delivery = settings.newsletter, settings.delivery
    found = [
        ("[sender] from", settings.sender_address, INIT_PLACEHOLDERS["sender"]),
        ("[newsletter] url", nl.url.rstrip("/") + "/", INIT_PLACEHOLDERS["url"]),
        ("[delivery] unsubscribe_mailto", delivery.unsubscribe_mailto.removeprefix("mailto:").split("?")[0],
         INIT_PLACEHOLDERS["unsubscribe"]),
        ("[newsletter] name", nl.name, INIT_PLACEHOLDERS["name"]),
    ]
    for key, value, placeholder in found:
        if value.strip().lower() == placeholder.lower():
            report.add(level, "placeholder", f"{settings.config_path}: {key} is still the example "
                                             f"{placeholder!r} from `newsletter init`: {why}")
