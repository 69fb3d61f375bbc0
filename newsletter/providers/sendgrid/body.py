"""The SendGrid v3 /mail/send request body: a pure function of the letter and its recipients.

Limits the schema does not encode (../shared/sendgrid/README.md) are enforced here: at most
1000 personalizations, each recipient once, substitutions and custom_args under 10,000 bytes,
at most 10 categories, text/plain before text/html, no `;` or `,` in recipient names.

Every request says what SendGrid may track, explicitly, so an account's defaults never decide it:
opens and clicks only when [sendgrid] open_tracking / click_tracking are on, subscription tracking
and Google Analytics never (our own unsubscribe link and List-Unsubscribe headers do that job).
Every request also carries the issue's own category (newsletter.report.category_for), which is how
`newsletter report` finds the issue in SendGrid's category statistics.

Addresses go out with A-label (IDNA) domains. An address with a non-ASCII local part is refused
before the request: SendGrid documents no support for SMTPUTF8 (internationalized) addresses,
so it is not sent rather than sent and garbled or bounced.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from newsletter.errors import RecipientError
from newsletter.models import Recipient
from newsletter.providers.base import Letter, Outgoing
from newsletter.render.fields import PLACEHOLDERS, TEXT_PLACEHOLDERS
from newsletter.render.headers import ascii_address, refuse_controls, short_name
from newsletter.render.message import (
    Links,
    list_headers,
    list_id,
    one_click_https,
    one_line,
    placeholder_value,
    placeholders_in,
    substitutions,
    unsubscribe_headers,
)
from newsletter.report.categories import category_for

MAX_REQUEST_BYTES = 30 * 1024 * 1024
MAX_SUBSTITUTION_BYTES = 10_000
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_CATEGORIES = 10
MAX_CATEGORY_LENGTH = 255
ISSUE_ARG = "newsletter_issue"  # custom_args key carrying the issue slug into SendGrid's events


def recipient_name(name: str) -> str:
    """A display name SendGrid accepts: one line, without ';' or ',' (it rejects both)."""
    return one_line(name.replace(";", " ").replace(",", " "))


def sendgrid_address(email: str) -> str:
    """The address as SendGrid gets it: the domain as A-labels; a non-ASCII local part is refused."""
    address = ascii_address(email)
    if address is None:
        raise RecipientError("SendGrid: not sent: SendGrid documents no support for an address whose local "
                             "part is not ASCII (SMTPUTF8); SMTP can send to it")
    return address


def address_object(value: str, *, clean_name: bool = False) -> dict[str, str]:
    """'Name <a@b>' -> {"email": ..., "name": ...}; an empty name is left out (no empty values)."""
    name, addr = parseaddr(value)
    name = recipient_name(name) if clean_name else one_line(name)
    return {"email": addr, "name": name} if name else {"email": addr}


def tracking_settings(letter: Letter) -> dict[str, Any]:
    """What SendGrid may track in this message: only what the writer turned on.

    Click tracking rewrites the HTML part's links only (enable_text false): the text part keeps
    the essay's own links, readable as written, in every case.
    """
    s = letter.settings.sendgrid
    return {
        "click_tracking": {"enable": s.click_tracking, "enable_text": False},
        "open_tracking": {"enable": s.open_tracking},
        "subscription_tracking": {"enable": False},
        "ganalytics": {"enable": False},
    }


def categories(letter: Letter) -> list[str]:
    """[sendgrid] categories and the issue's own category, each once, the issue's last."""
    return list(dict.fromkeys([*letter.settings.sendgrid.categories, category_for(letter.rendered.slug)]))


def per_recipient_headers(letter: Letter) -> bool:
    """True when List-Unsubscribe differs per person (an https link: the reader service's, or with {email})."""
    return one_click_https(letter.settings)


@dataclass(frozen=True)
class Shared:
    """The content every request of a send carries, and the placeholders SendGrid fills per person."""

    text: str
    html: str
    tokens: frozenset[str]
    links: Links  # each person's unsubscribe link, made as their personalization is built
    personal_headers: bool = False  # List-Unsubscribe differs per person (per_recipient_headers)


def shared_content(letter: Letter) -> Shared:
    """Fill the values that are the same for everyone into the content once; list the rest.

    The unsubscribe link is the same for every recipient unless it is an https link with the
    address or a token in it; a placeholder the templates do not use needs no substitution.
    Both keep each personalization (and the request SendGrid must parse) small.
    """
    text, html = letter.rendered.text, letter.rendered.html
    links, personal = Links(letter.settings, letter.secret), per_recipient_headers(letter)
    if not personal:
        same = substitutions(links.recipient("", ""))
        html = html.replace(PLACEHOLDERS["unsubscribe_url"], same[PLACEHOLDERS["unsubscribe_url"]])
        text = text.replace(TEXT_PLACEHOLDERS["unsubscribe_url"], same[TEXT_PLACEHOLDERS["unsubscribe_url"]])
    return Shared(text, html, frozenset(placeholders_in(html) | placeholders_in(text)), links, personal)


def personalization(letter: Letter, recipient: Recipient, shared: Shared | None = None) -> dict[str, Any]:
    """One envelope: one recipient (so nobody sees anyone else), their values, their headers.

    Raises RecipientError for an address SendGrid cannot be given (see the module docstring).
    """
    shared = shared or shared_content(letter)
    to = {"email": sendgrid_address(recipient.email)}
    refuse_controls(recipient.name, "the name")
    name = recipient_name(short_name(recipient.name))
    if name:
        to["name"] = name
    p: dict[str, Any] = {"to": [to]}
    personal = shared.personal_headers
    if shared.tokens or personal:
        recipient = shared.links.linked(recipient)  # signed once, for both uses
    if shared.tokens:
        p["substitutions"] = {token: placeholder_value(recipient, token) for token in shared.tokens}
    if personal:  # List-Unsubscribe(-Post) for one person; List-Id is the request's, the same for all
        p["headers"] = unsubscribe_headers(recipient, shared.links, folded=False)
    return p


def personalization_problem(p: dict[str, Any]) -> str | None:
    """Why SendGrid would refuse this personalization, or None."""
    subs = p.get("substitutions", {})
    if sum(map(len, subs)) + sum(map(len, subs.values())) < MAX_SUBSTITUTION_BYTES // 4:
        return None  # a character is at most 4 bytes in UTF-8: surely small enough
    size = sum(len(k.encode()) + len(v.encode()) for k, v in subs.items())
    if size >= MAX_SUBSTITUTION_BYTES:
        return (f"personal values are {size:,} bytes; SendGrid allows under {MAX_SUBSTITUTION_BYTES:,} "
                "per recipient (is the name very long?)")
    return None


def shared_headers(letter: Letter) -> dict[str, str]:
    """Headers every recipient gets: List-Id, and List-Unsubscribe when it is the same for all."""
    if per_recipient_headers(letter):
        return {"List-Id": list_id(letter.settings)}
    return list_headers(letter.settings, Recipient(email=""), Links(letter.settings, letter.secret))


def mail_body(letter: Letter, batch: Sequence[Outgoing], personalizations: Sequence[dict[str, Any]] | None = None,
              shared: Shared | None = None) -> dict[str, Any]:
    """The /v3/mail/send body for one batch: content once, one personalization per recipient."""
    s, rendered = letter.settings, letter.rendered
    shared = shared or shared_content(letter)
    body: dict[str, Any] = {
        "personalizations": list(personalizations) if personalizations is not None
        else [personalization(letter, o.recipient, shared) for o in batch],
        "from": address_object(s.sender.from_),
        "subject": one_line(letter.subject_prefix + rendered.subject),
        # SendGrid requires text/plain before text/html.
        "content": [{"type": "text/plain", "value": shared.text}, {"type": "text/html", "value": shared.html}],
        "headers": shared_headers(letter),
        "custom_args": {ISSUE_ARG: rendered.slug},
        "categories": categories(letter),
        "tracking_settings": tracking_settings(letter),
    }
    if s.sender.reply_to:
        body["reply_to"] = address_object(s.sender.reply_to, clean_name=True)
    if s.sendgrid.unsubscribe_group_id is not None:
        body["asm"] = {"group_id": s.sendgrid.unsubscribe_group_id}
    if letter.send_at is not None:
        body["send_at"] = letter.send_at
    if letter.batch_id:
        body["batch_id"] = letter.batch_id
    return body


def settings_problems(letter: Letter) -> list[str]:
    """What in the configuration SendGrid would refuse for every request (checked before sending)."""
    s = letter.settings
    where = f"{s.config_path}: [sendgrid] categories"
    problems = []
    if len(categories(letter)) > MAX_CATEGORIES:  # the issue's own category is one of SendGrid's 10
        problems.append(f"{where}: at most {MAX_CATEGORIES - 1} categories (SendGrid allows {MAX_CATEGORIES}; "
                        f"the issue's own category is one), got {len(set(s.sendgrid.categories))}")
    problems += [f"{where}: {c!r} is longer than {MAX_CATEGORY_LENGTH} characters"
                 for c in s.sendgrid.categories if len(c) > MAX_CATEGORY_LENGTH]
    problems += [f"{where}: empty category" for c in s.sendgrid.categories if not c.strip()]
    if len(json.dumps({ISSUE_ARG: letter.rendered.slug}).encode()) >= MAX_CUSTOM_ARGS_BYTES:
        problems.append("the issue slug is too long for SendGrid's custom_args")
    return problems

