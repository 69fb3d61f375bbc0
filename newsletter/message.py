"""Per-recipient values, unsubscribe links and the MIME message.

The MIME tree of every message:

    multipart/alternative
    ├── text/plain; charset=utf-8   (first: clients show the last part they can render)
    └── text/html; charset=utf-8

Subscriber data is inserted as text (HTML-escaped in the HTML part), never evaluated as a
template; a newline in a name or subject is folded to a space so it can never add a header.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from urllib.parse import quote

from newsletter.config import Settings
from newsletter.issues import slugify
from newsletter.models import Recipient, RenderedEmail
from newsletter.render import PLACEHOLDERS, TEXT_PLACEHOLDERS

SENDGRID_GROUP_UNSUBSCRIBE = "<%asm_group_unsubscribe_raw_url%>"
FIRST_NAME_FALLBACK = "friend"
SAMPLE_RECIPIENT = Recipient(email="reader@example.com", name="Sample Reader")


def one_line(value: str) -> str:
    """Fold every run of whitespace (newlines included) to one space."""
    return " ".join(value.split())


def unsubscribe_token(secret: str, email: str) -> str:
    """An HMAC of the address, so an unsubscribe link cannot be forged for someone else."""
    return hmac.new(secret.encode(), email.lower().encode(), hashlib.sha256).hexdigest()[:32]


def has_unsubscribe(settings: Settings) -> bool:
    """True when at least one unsubscribe method is configured for the chosen provider."""
    d = settings.delivery
    group = settings.delivery.provider == "sendgrid" and settings.sendgrid.unsubscribe_group_id is not None
    return bool(group or d.unsubscribe_url or d.unsubscribe_mailto)


def unsubscribe_links(settings: Settings, email: str, secret: str) -> tuple[str, str]:
    """Return (https link, mailto link) for a recipient; either may be empty."""
    d = settings.delivery
    url = ""
    if d.unsubscribe_url:
        url = d.unsubscribe_url.replace("{email}", quote(email, safe="@")).replace(
            "{token}", unsubscribe_token(secret, email)
        )
    mailto = ""
    if d.unsubscribe_mailto:
        mailto = "mailto:" + d.unsubscribe_mailto.removeprefix("mailto:").split("?")[0] + "?subject=unsubscribe"
    return url, mailto


def recipient_for(settings: Settings, email: str, name: str, secret: str) -> Recipient:
    """A Recipient with the visible unsubscribe link the configured method gives."""
    if settings.delivery.provider == "sendgrid" and settings.sendgrid.unsubscribe_group_id is not None:
        return Recipient(email=email, name=name, unsubscribe_url=SENDGRID_GROUP_UNSUBSCRIBE)
    url, mailto = unsubscribe_links(settings, email, secret)
    return Recipient(email=email, name=name, unsubscribe_url=url or mailto)


def substitutions(recipient: Recipient) -> dict[str, str]:
    """Placeholder -> value for both parts: HTML-escaped for the HTML, literal for the text."""
    name = one_line(recipient.name)
    values = {
        "email": recipient.email,
        "name": name,
        "first_name": recipient.first_name or FIRST_NAME_FALLBACK,
        "unsubscribe_url": recipient.unsubscribe_url,
    }
    subs = {PLACEHOLDERS[k]: html.escape(v, quote=True) for k, v in values.items()}
    if recipient.unsubscribe_url == SENDGRID_GROUP_UNSUBSCRIBE:  # SendGrid must see its own tag intact
        subs[PLACEHOLDERS["unsubscribe_url"]] = SENDGRID_GROUP_UNSUBSCRIBE
    subs.update({TEXT_PLACEHOLDERS[k]: v for k, v in values.items()})
    return subs


_TOKEN = re.compile("|".join(re.escape(t) for t in (*TEXT_PLACEHOLDERS.values(), *PLACEHOLDERS.values())))


def fill(template: str, subs: dict[str, str]) -> str:
    """Replace every placeholder in one pass, so a value can never be re-substituted."""
    return _TOKEN.sub(lambda m: subs[m.group(0)], template)


def personalize(rendered: RenderedEmail, recipient: Recipient) -> tuple[str, str]:
    """Return (html, text) for one recipient."""
    subs = substitutions(recipient)
    return fill(rendered.html, subs), fill(rendered.text, subs)


def list_id(settings: Settings) -> str:
    """List-Id: 'Name <slug.sender-domain>' unless [delivery] list_id says otherwise."""
    ident = settings.delivery.list_id or f"{slugify(settings.newsletter.name)}.{settings.sender_domain}"
    return f"{one_line(settings.newsletter.name)} <{ident}>"


def list_headers(settings: Settings, recipient: Recipient, secret: str) -> dict[str, str]:
    """List-Unsubscribe (https and/or mailto), List-Unsubscribe-Post when https, List-Id."""
    url, mailto = unsubscribe_links(settings, recipient.email, secret)
    headers = {"List-Id": list_id(settings)}
    links = ", ".join(f"<{u}>" for u in (url, mailto) if u)
    if links:
        headers["List-Unsubscribe"] = links
    if url:
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def build_message(
    rendered: RenderedEmail,
    recipient: Recipient,
    settings: Settings,
    *,
    secret: str = "",
    subject_prefix: str = "",
    date: object = None,
    message_id: str | None = None,
) -> EmailMessage:
    """The complete MIME message for one recipient, ready for SMTP or an .eml file."""
    import datetime as dt

    html_part, text_part = personalize(rendered, recipient)
    msg = EmailMessage()
    sender_name, sender_addr = parseaddr(settings.sender.from_)
    msg["From"] = formataddr((one_line(sender_name), sender_addr))
    msg["To"] = Address(display_name=one_line(recipient.name), addr_spec=recipient.email)
    if settings.sender.reply_to:
        msg["Reply-To"] = one_line(settings.sender.reply_to)
    msg["Subject"] = one_line(subject_prefix + rendered.subject)
    when = date if isinstance(date, dt.datetime) else dt.datetime.now(dt.UTC)
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id or make_msgid(idstring=rendered.slug, domain=settings.sender_domain)
    for name, value in list_headers(settings, recipient, secret).items():
        msg[name] = value
    msg.set_content(text_part, subtype="plain", charset="utf-8")
    msg.add_alternative(html_part, subtype="html", charset="utf-8")
    return msg
