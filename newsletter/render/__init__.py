"""Render: an Issue and Settings become a RenderedEmail, then each recipient's message.

The face of the package: what other packages use. Each name is imported from its module on
first use, so importing one module of the package never imports the others (`--help` stays fast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsletter.lazy import lazy_names

if TYPE_CHECKING:
    from newsletter.render.checks import GMAIL_CLIP_BYTES, KB, CheckReport, kb, run_checks
    from newsletter.render.compose import (
        PACKAGE_TEMPLATES,
        base_url,
        format_date,
        render_issue,
        render_template,
        template_env,
        template_source,
        typeset,
        web_url,
    )
    from newsletter.render.essay import Essay, render_essay
    from newsletter.render.fields import PLACEHOLDERS, TEXT_PLACEHOLDERS, fields_as_fallbacks
    from newsletter.render.headers import PreFolded, ascii_address, refuse_controls, short_name, to_header
    from newsletter.render.message import (
        SAMPLE_RECIPIENT,
        build_message,
        has_unsubscribe,
        list_headers,
        list_id,
        message_bytes,
        one_line,
        personalize,
        placeholders_in,
        recipient_for,
        sample_recipient,
        substitutions,
        unsubscribe_token,
    )
    from newsletter.render.sample import build_issue, render_and_check, sample_files

_HOMES = {  # module -> the names it gives the face
    "compose": (
        "PACKAGE_TEMPLATES", "base_url", "format_date", "render_issue", "render_template", "template_env",
        "template_source", "typeset", "web_url",
    ),
    "essay": ("Essay", "render_essay"),
    "fields": ("PLACEHOLDERS", "TEXT_PLACEHOLDERS", "fields_as_fallbacks"),
    "headers": ("PreFolded", "ascii_address", "refuse_controls", "short_name", "to_header"),
    "message": (
        "SAMPLE_RECIPIENT", "build_message", "has_unsubscribe", "list_headers", "list_id", "message_bytes",
        "one_line", "personalize", "placeholders_in", "recipient_for", "sample_recipient", "substitutions",
        "unsubscribe_token",
    ),
    "checks": ("GMAIL_CLIP_BYTES", "KB", "CheckReport", "kb", "run_checks"),
    "sample": ("build_issue", "render_and_check", "sample_files"),
}
__all__ = [
    "CheckReport", "Essay", "GMAIL_CLIP_BYTES", "KB", "PACKAGE_TEMPLATES", "PLACEHOLDERS", "PreFolded",
    "SAMPLE_RECIPIENT", "TEXT_PLACEHOLDERS", "ascii_address", "base_url", "build_issue", "build_message",
    "fields_as_fallbacks", "format_date", "has_unsubscribe", "kb", "list_headers", "list_id", "message_bytes",
    "one_line", "personalize", "placeholders_in", "recipient_for", "refuse_controls", "render_and_check",
    "render_essay", "render_issue", "render_template", "run_checks", "sample_files", "sample_recipient",
    "short_name", "substitutions", "template_env", "template_source", "to_header", "typeset", "unsubscribe_token",
    "web_url",
]


__getattr__ = lazy_names(__name__, _HOMES)
