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
from newsletter.render.fields import FIRST_NAME_FALLBACK, PLACEHOLDERS, TEXT_PLACEHOLDERS, TOKEN, unpack_fallback
from newsletter.render.headers import (
    PreFolded,
    ascii_address,
    list_unsubscribe_header,
    list_unsubscribe_value,
    to_header,
)
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
    """The signer of the reader service's links; None without a secret (their token is NO_SECRET_TOKEN).

    A build, a preview or an outbox rehearsal may go on without it; a real send is refused first.
    """
    secrets = parse_secrets(secret)
    return Tokens(secrets) if secrets else None


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


class Links:
    """One send's unsubscribe links, with what is the same for everyone worked out once.

    With [readers] url the https link is the reader service's (it records the unsubscribe);
    otherwise [delivery] unsubscribe_url, with {email} and {token} filled. The mailto link
    ([delivery] unsubscribe_mailto) is the same for everyone. A large send makes one link a
    reader, in the body-building worker or as each message is built: this is its hot path.
    """

    def __init__(self, settings: Settings, secret: str) -> None:
        d = settings.delivery
        readers = settings.readers_url
        # The reader service's link wins over SendGrid's group link: it is the one List-Unsubscribe
        # carries too, so the reader meets one way out, and SendGrid's group (still set on the
        # message) reports its own unsubscribes through the event webhook.
        self.group = d.provider == "sendgrid" and settings.sendgrid.unsubscribe_group_id is not None and not readers
        self.readers = readers + "unsubscribe/" if readers else ""
        self.template = d.unsubscribe_url
        self.secret = secret
        self.tokens = _tokens(secret)
        mailto = d.unsubscribe_mailto.removeprefix("mailto:").split("?")[0]
        self.mailto = f"mailto:{mailto}?subject=unsubscribe" if mailto else ""

    def url(self, email: str) -> str:
        """The https link for this address, or '' when only a mailto link is configured."""
        if self.readers:
            token = self.tokens.unsubscribe_token(email_key(email)) if self.tokens is not None else NO_SECRET_TOKEN
            return self.readers + token
        if not self.template:
            return ""
        url = self.template.replace("{email}", quote(email, safe="@"))
        return url.replace("{token}", unsubscribe_token(self.secret, email)) if "{token}" in url else url

    def recipient(self, email: str, name: str) -> Recipient:
        """A Recipient with the visible unsubscribe link the configured method gives."""
        if self.group:
            return Recipient(email=email, name=name, unsubscribe_url=SENDGRID_GROUP_UNSUBSCRIBE)
        return Recipient(email=email, name=name, unsubscribe_url=self.url(email) or self.mailto)

    def linked(self, recipient: Recipient) -> Recipient:
        """The recipient with their unsubscribe link: as given, or made now.

        A send plans its recipients without links and has each made when the recipient's message
        or personalization is built (in SendGrid's body-building worker for a large send): a
        signed link is most of a recipient's cost, and a million of them would crowd the planner.
        """
        return recipient if recipient.unsubscribe_url else self.recipient(recipient.email, recipient.name)

    def for_headers(self, recipient: Recipient) -> tuple[str, str]:
        """(https link, mailto link) for List-Unsubscribe: the recipient's own link, not signed again."""
        own = recipient.unsubscribe_url
        if own and not own.startswith("mailto:") and own != SENDGRID_GROUP_UNSUBSCRIBE:
            return own, self.mailto
        return self.url(recipient.email), self.mailto


def recipient_for(settings: Settings, email: str, name: str, secret: str) -> Recipient:
    """A Recipient with the visible unsubscribe link the configured method gives (see Links)."""
    return Links(settings, secret).recipient(email, name)


def sample_recipient(settings: Settings, secret: str) -> Recipient:
    """The sample reader build, check and the preview render for."""
    return recipient_for(settings, SAMPLE_RECIPIENT.email, SAMPLE_RECIPIENT.name, secret)


_FIELD_OF = {token: (field, False) for field, token in PLACEHOLDERS.items()} | {
    token: (field, True) for field, token in TEXT_PLACEHOLDERS.items()}


def placeholder_value(recipient: Recipient, token: str) -> str:
    """A placeholder's value for one recipient: HTML-escaped for the HTML part, literal for the text.

    KeyError for a token that is no placeholder.
    """
    recipe = _FIELD_OF.get(token)
    if recipe is not None:
        field, text = recipe
        value = _own(recipient, field) or (FIRST_NAME_FALLBACK if field == "first_name" else "")
        if field == "unsubscribe_url" and value == SENDGRID_GROUP_UNSUBSCRIBE:
            text = True  # SendGrid must see its own tag intact
    else:
        match = TOKEN.fullmatch(token)
        if match is None:
            raise KeyError(token)
        field, text = match.group("field").lower(), bool(match.group("text"))
        value = _own(recipient, field) or unpack_fallback(match.group("fallback"))
    return value if text else html.escape(value, quote=True)


def _own(recipient: Recipient, field: str) -> str:
    """The recipient's own value of a field, before any fallback."""
    if field == "email":
        return recipient.email
    if field == "name":
        return one_line(recipient.name)
    return recipient.first_name if field == "first_name" else recipient.unsubscribe_url


class Substitutions(dict[str, str]):
    """Placeholder -> value (placeholder_value), each worked out the first time it is asked for.

    A recipient's content uses a few of the placeholders (the templates' four fields, in HTML
    and text, and the essay's fields with fallbacks): only those are ever computed.
    """

    def __init__(self, recipient: Recipient) -> None:
        super().__init__()
        self.recipient = recipient

    def __missing__(self, token: str) -> str:
        value = self[token] = placeholder_value(self.recipient, token)
        return value


def substitutions(recipient: Recipient) -> Substitutions:
    """Placeholder -> value for both parts: HTML-escaped for the HTML, literal for the text."""
    return Substitutions(recipient)


_TOKEN = re.compile("|".join([TOKEN.pattern, *(re.escape(t) for t in (*TEXT_PLACEHOLDERS.values(),
                                                                         *PLACEHOLDERS.values()))]))


def placeholders_in(content: str) -> set[str]:
    """Every placeholder token the content holds (the templates' and the essay's fields)."""
    return {m.group(0) for m in _TOKEN.finditer(content)}


def placeholder_pieces(template: str) -> list[str]:
    """The template cut at its placeholders: text, token, text, ..., text (a token at every odd place)."""
    pieces, last = [], 0
    for match in _TOKEN.finditer(template):
        pieces += [template[last:match.start()], match.group(0)]
        last = match.end()
    pieces.append(template[last:])
    return pieces


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


def list_headers(settings: Settings, recipient: Recipient, links: Links) -> dict[str, str]:
    """List-Id, then List-Unsubscribe and List-Unsubscribe-Post (unsubscribe_headers)."""
    return {"List-Id": list_id(settings), **unsubscribe_headers(recipient, links)}


def unsubscribe_headers(recipient: Recipient, links: Links, *, folded: bool = True) -> dict[str, str]:
    """List-Unsubscribe (https and/or mailto), List-Unsubscribe-Post when https.

    Folded for a message we write; on one line (not folded) for an API that folds it (SendGrid).
    """
    url, mailto = links.for_headers(recipient)
    headers: dict[str, str] = {}
    uris = [u for u in (url, mailto) if u]
    if uris:
        headers["List-Unsubscribe"] = list_unsubscribe_header(uris) if folded else list_unsubscribe_value(uris)
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
    for name, value in list_headers(settings, recipient, Links(settings, secret)).items():
        if isinstance(value, PreFolded):
            msg.set_raw(name, value)
        else:
            msg[name] = value
    msg.set_content(text_part, subtype="plain", charset="utf-8")
    msg.add_alternative(html_part, subtype="html", charset="utf-8")
    return msg
