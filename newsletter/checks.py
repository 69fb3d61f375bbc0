"""Preflight checks: what a careful editor looks at before pressing send."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import html as lxml_html

from newsletter.config import Settings
from newsletter.message import SAMPLE_RECIPIENT, build_message, has_unsubscribe, recipient_for
from newsletter.models import CheckResult, Issue, RenderedEmail

GMAIL_CLIP_BYTES = 102 * 1024
STYLE_LIMIT_BYTES = 16 * 1024
SUBJECT_RANGE = (10, 78)
VAGUE_LINK_TEXT = {"click here", "here", "click", "link", "this", "this link", "read more", "more", "go"}
_PLACEHOLDER_WORD = re.compile(r"\b(TK|TODO|FIXME|XXX)\b")
_TEMPLATE_LEFTOVER = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|%%[A-Z_]+%%")


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


def transmitted_sizes(rendered: RenderedEmail, settings: Settings) -> tuple[int, int, str, str]:
    """Build the sample message; return (html part bytes, message bytes, html, text) as sent."""
    recipient = recipient_for(settings, SAMPLE_RECIPIENT.email, SAMPLE_RECIPIENT.name, secret="preview")
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
    _check_html(html, text, report)
    _check_links(rendered, report)
    _check_images(rendered, report)
    _check_compliance(settings, report)
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
    size, margin = report.html_bytes, GMAIL_CLIP_BYTES - report.html_bytes
    text = f"HTML is {size / 1024:.1f} KB of Gmail's 102 KB clip ({margin / 1024:.1f} KB to spare)"
    if margin < 0:
        report.add("error", "size", f"HTML is {size / 1024:.1f} KB: Gmail clips messages over 102 KB "
                                    f"({-margin / 1024:.1f} KB over)")
    else:
        report.add("warning" if margin < 10 * 1024 else "ok", "size", text)


def _check_body_words(issue: Issue, report: CheckReport) -> None:
    in_code = False
    for offset, line in enumerate(issue.body.splitlines()):
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
        match = None if in_code else _PLACEHOLDER_WORD.search(line)
        if match:
            report.add("error", "placeholder",
                       f"{issue.path}:{issue.body_line + offset}: leftover placeholder {match.group(1)!r}")


def _check_html(html: str, text: str, report: CheckReport) -> None:
    doc = lxml_html.document_fromstring(html)
    if doc.xpath("//script|//iframe|//form|//object|//embed"):
        report.add("error", "unsafe", "the HTML contains script, iframe, form or embedded objects")
    style_bytes = sum(len((s.text or "").encode()) for s in doc.xpath("//style"))
    if style_bytes > STYLE_LIMIT_BYTES:
        report.add("error", "style", f"<style> is {style_bytes} bytes; Gmail drops styles over 16 KB")
    for part, content in (("HTML", html), ("text", text)):
        left = _TEMPLATE_LEFTOVER.search(content)
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


def _check_images(rendered: RenderedEmail, report: CheckReport) -> None:
    for src, alt, width in rendered.images:
        if not alt.strip():
            report.add("error", "image", f"image {src} has no alt text (add it: ![what it shows](...))")
        if not width.strip():
            report.add("warning", "image", f"image {src} has no width; it is shown 600px wide "
                                           "(add {width=N} after it)")


def _check_compliance(settings: Settings, report: CheckReport) -> None:
    if not has_unsubscribe(settings):
        report.add("error", "unsubscribe", f"{settings.config_path}: no unsubscribe method: set [delivery] "
                                           "unsubscribe_mailto or unsubscribe_url")
    if not settings.newsletter.postal_address.strip():
        report.add("warning", "postal_address", f"{settings.config_path}: [newsletter] postal_address is empty "
                                                "(anti-spam laws ask for one in every email)")
