"""Per-recipient values, unsubscribe links and the MIME message.

The MIME tree of every message:

    multipart/alternative
    ├── text/plain; charset=utf-8   (first: clients show the last part they can render)
    └── text/html; charset=utf-8

Subscriber data is inserted as text (HTML-escaped in the HTML part), never evaluated as a
template; a newline in a name or subject is folded to a space so it can never add a header.
The per-recipient headers (To, List-Unsubscribe) are written by newsletter.render.headers, so
this message and the fast one of providers/mime.py carry them byte for byte alike. A message
whose recipient has a non-ASCII local part is built with UTF-8 headers (RFC 6532) and needs
SMTPUTF8; anything that cannot be put in a header raises RecipientError for that recipient.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import html
import re
from collections.abc import Mapping
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from urllib.parse import quote

from newsletter.config import Settings
from newsletter.errors import RecipientError
from newsletter.issues import slugify
from newsletter.models import Recipient, RenderedEmail
from newsletter.render.compose import PLACEHOLDERS, TEXT_PLACEHOLDERS
from newsletter.render.fields import FIRST_NAME_FALLBACK, TOKEN, unpack_fallback
from newsletter.render.headers import PreFolded, ascii_address, list_unsubscribe_header, to_header
from newsletter.subscribers.schema import email_key
from newsletter.tokens import Tokens, parse_secrets

SENDGRID_GROUP_UNSUBSCRIBE = "<%asm_group_unsubscribe_raw_url%>"
SAMPLE_RECIPIENT = Recipient(email="reader@example.com", name="Sample Reader")  # build, check, the preview
# The token of an unsubscribe link made without the secret: plainly not one, and refused by the service.
NO_SECRET_TOKEN = "no-secret-set.this-link-does-not-work"
UTF8_HEADERS = email_policy.default.clone(utf8=True)  # RFC 6532, for an address with a non-ASCII local part


def one_line(value: str) -> str:
    """Fold every run of whitespace (newlines included) to one space."""
    return " ".join(value.split())


def unsubscribe_token(secret: str, email: str) -> str:
    """An HMAC of the address, so an unsubscribe link cannot be forged for someone else.

    For [delivery] unsubscribe_url's {token}; signed with the newest of the secrets.
    """
    newest = next(iter(parse_secrets(secret)), "")
    return hmac.new(newest.encode(), email.lower().encode(), hashlib.sha256).hexdigest()[:32]


@functools.lru_cache(maxsize=4)
def _tokens(secret: str) -> Tokens | None:
    secrets = parse_secrets(secret)
    return Tokens(secrets) if secrets else None


def reader_token(secret: str, email: str) -> str:
    """The token of the reader service's unsubscribe link for this address (no address in it).

    Without a secret (a build, a preview, an outbox rehearsal) it is NO_SECRET_TOKEN, which the
    service refuses; a real send without the secret is refused before anything goes out.
    """
    tokens = _tokens(secret)
    return tokens.unsubscribe_token(email_key(email)) if tokens is not None else NO_SECRET_TOKEN


def has_unsubscribe(settings: Settings) -> bool:
    """True when at least one unsubscribe method is configured for the chosen provider."""
    d = settings.delivery
    group = settings.delivery.provider == "sendgrid" and settings.sendgrid.unsubscribe_group_id is not None
    return bool(group or settings.readers_url or d.unsubscribe_url or d.unsubscribe_mailto)


def one_click_https(settings: Settings) -> bool:
    """True when every message carries an https link in List-Unsubscribe, with List-Unsubscribe-Post."""
    return bool(settings.readers_url or settings.delivery.unsubscribe_url)


def needs_secret(settings: Settings) -> bool:
    """True when the unsubscribe links are signed: the reader service's, or a {token} in unsubscribe_url."""
    return bool(settings.readers_url) or "{token}" in settings.delivery.unsubscribe_url


def unsubscribe_links(settings: Settings, email: str, secret: str) -> tuple[str, str]:
    """Return (https link, mailto link) for a recipient; either may be empty.

    With [readers] url the https link is the reader service's (it records the unsubscribe);
    otherwise [delivery] unsubscribe_url, with {email} and {token} filled.
    """
    d = settings.delivery
    url = ""
    if settings.readers_url:
        url = settings.readers_url + "unsubscribe/" + reader_token(secret, email)
    elif d.unsubscribe_url:
        url = d.unsubscribe_url.replace("{email}", quote(email, safe="@")).replace(
            "{token}", unsubscribe_token(secret, email)
        )
    mailto = ""
    if d.unsubscribe_mailto:
        mailto = "mailto:" + d.unsubscribe_mailto.removeprefix("mailto:").split("?")[0] + "?subject=unsubscribe"
    return url, mailto


def recipient_for(settings: Settings, email: str, name: str, secret: str) -> Recipient:
    """A Recipient with the visible unsubscribe link the configured method gives.

    The reader service's link wins over SendGrid's group link: it is the one List-Unsubscribe
    carries too, so the reader meets one way out, and SendGrid's group (still set on the
    message) reports its own unsubscribes through the event webhook.
    """
    group = settings.delivery.provider == "sendgrid" and settings.sendgrid.unsubscribe_group_id is not None
    if group and not settings.readers_url:
        return Recipient(email=email, name=name, unsubscribe_url=SENDGRID_GROUP_UNSUBSCRIBE)
    url, mailto = unsubscribe_links(settings, email, secret)
    return Recipient(email=email, name=name, unsubscribe_url=url or mailto)


def sample_recipient(settings: Settings, secret: str) -> Recipient:
    """The sample reader build, check and the preview render for."""
    return recipient_for(settings, SAMPLE_RECIPIENT.email, SAMPLE_RECIPIENT.name, secret)


class Substitutions(dict[str, str]):
    """Placeholder -> value; an essay field's token with a fallback is worked out when asked for."""

    def __init__(self, values: dict[str, str], raw: dict[str, str]) -> None:
        super().__init__(values)
        self.raw = raw  # the recipient's own values, before any fallback

    def __missing__(self, token: str) -> str:
        match = TOKEN.fullmatch(token)
        if match is None:
            raise KeyError(token)
        value = self.raw[match.group("field").lower()] or unpack_fallback(match.group("fallback"))
        self[token] = value if match.group("text") else html.escape(value, quote=True)
        return self[token]


def substitutions(recipient: Recipient) -> Substitutions:
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
    return Substitutions(subs, {"email": recipient.email, "name": name, "first_name": recipient.first_name})


_TOKEN = re.compile("|".join([TOKEN.pattern, *(re.escape(t) for t in (*TEXT_PLACEHOLDERS.values(),
                                                                         *PLACEHOLDERS.values()))]))


def placeholders_in(content: str) -> set[str]:
    """Every placeholder token the content holds (the templates' and the essay's fields)."""
    return {m.group(0) for m in _TOKEN.finditer(content)}


def fill(template: str, subs: Mapping[str, str]) -> str:
    """Replace every placeholder in one pass, so a value can never be re-substituted."""
    return _TOKEN.sub(lambda m: subs[m.group(0)], template)


def personalize(rendered: RenderedEmail, recipient: Recipient) -> tuple[str, str]:
    """Return (html, text) for one recipient."""
    subs = substitutions(recipient)
    return fill(rendered.html, subs), fill(rendered.text, subs)


def sender_header(from_: str) -> str:
    """From: the sender's name and address, the domain as A-labels when it is internationalized."""
    name, addr = parseaddr(from_)
    with contextlib.suppress(RecipientError):  # the configuration check reports a sender that is no address
        addr = ascii_address(addr) or addr
    return formataddr((one_line(name), addr))


def message_bytes(msg: EmailMessage) -> bytes:
    """The message as sent (CRLF), with UTF-8 headers when its recipient's address needs them."""
    utf8 = isinstance(msg.policy, email_policy.EmailPolicy) and msg.policy.utf8
    return msg.as_bytes(policy=email_policy.SMTPUTF8 if utf8 else email_policy.SMTP)


def list_id(settings: Settings) -> str:
    """List-Id: 'Name <slug.sender-domain>' unless [delivery] list_id says otherwise."""
    ident = settings.delivery.list_id or f"{slugify(settings.newsletter.name)}.{settings.sender_domain}"
    return f"{one_line(settings.newsletter.name)} <{ident}>"


def list_headers(settings: Settings, recipient: Recipient, secret: str) -> dict[str, str]:
    """List-Unsubscribe (https and/or mailto), List-Unsubscribe-Post when https, List-Id."""
    url, mailto = unsubscribe_links(settings, recipient.email, secret)
    headers = {"List-Id": list_id(settings)}
    links = [u for u in (url, mailto) if u]
    if links:
        headers["List-Unsubscribe"] = list_unsubscribe_header(links)
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

    to = to_header(recipient.name, recipient.email)
    html_part, text_part = personalize(rendered, recipient)
    msg = EmailMessage(policy=email_policy.default if to.isascii() else UTF8_HEADERS)
    msg["From"] = sender_header(settings.sender.from_)
    msg.set_raw("To", to)
    if settings.sender.reply_to:
        msg["Reply-To"] = one_line(settings.sender.reply_to)
    msg["Subject"] = one_line(subject_prefix + rendered.subject)
    when = date if isinstance(date, dt.datetime) else dt.datetime.now(dt.UTC)
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id or make_msgid(idstring=rendered.slug, domain=settings.sender_domain)
    for name, value in list_headers(settings, recipient, secret).items():
        if isinstance(value, PreFolded):
            msg.set_raw(name, value)
        else:
            msg[name] = value
    msg.set_content(text_part, subtype="plain", charset="utf-8")
    msg.add_alternative(html_part, subtype="html", charset="utf-8")
    return msg
