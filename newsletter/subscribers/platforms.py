"""What each platform's subscriber export means, column by column.

Each mapper gets one row as {normalised header: value} (normalised: lower case, letters and
digits only, so "Email Address", "email_address" and "EMAIL ADDRESS" are all "emailaddress")
and returns a Mapped row, or raises Skip with the reason. Platform quirks are commented where
they are handled. The column layouts are those of the platforms' own exports:

- Substack, Settings > Export: email_list.<pub>.csv with email, active_subscription, expiry,
  plan, email_disabled, created_at, first_payment_at; or the Subscribers page's CSV (Email,
  Name, Subscription type, ..., Subscription date, ...).
- Mailchimp, Audience > Export: a ZIP of subscribed_/unsubscribed_/cleaned_/nonsubscribed_
  members_export_<id>.csv, each with Email Address, First Name, Last Name, ..., MEMBER_RATING,
  OPTIN_TIME, CONFIRM_TIME, ..., LEID, EUID, NOTES, TAGS (+ UNSUB_* or CLEAN_* columns).
- Buttondown, Settings > Export: email (email_address in newer exports), creation_date, notes,
  metadata, tags, subscriber_type (type), referrer_url, secondary_id, utm_*...
- listmonk, Subscribers > Export: uuid, email, name, attributes, status, created_at, updated_at.
- Ghost, Members > Export: id, email, name, note, subscribed_to_emails, complimentary_plan,
  stripe_customer_id, created_at, deleted_at, labels, tiers.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Cells = Mapping[str, str]

EMAIL_COLUMNS = ("email", "emailaddress", "mail", "emailaddr", "subscriberemail", "useremail")
_NAME = ("name", "fullname", "displayname", "subscribername", "contactname")
_FIRST = ("firstname", "fname", "givenname", "forename", "first")
_LAST = ("lastname", "lname", "surname", "familyname", "last")
_TAGS = ("tags", "tag", "labels", "label", "groups", "segments")
_STATUS = ("status", "state", "subscriptionstatus", "subscribed")
_CREATED = (
    "createdat", "created", "creationdate", "subscribedat", "subscriptiondate", "signupdate",
    "signedup", "dateadded", "joined", "joinedat", "optintime", "date",
)
KNOWN_GENERIC = frozenset(
    EMAIL_COLUMNS + _NAME + _FIRST + _LAST + _TAGS + _STATUS + _CREATED + ("updatedat", "source")
)
_GENERIC_STATUS = {
    "active": ("", "active", "subscribed", "enabled", "confirmed", "true", "yes", "y", "1", "optedin"),
    "unsubscribed": ("unsubscribed", "unsubscribe", "disabled", "false", "no", "n", "0", "optedout",
                     "inactive", "blocklisted", "blacklisted", "removed"),
    "bounced": ("bounced", "cleaned", "undeliverable", "hardbounce", "invalid"),
    "complained": ("complained", "complaint", "spam", "abuse", "spamreport"),
}
_GENERIC_STATUS_OF = {v: status for status, values in _GENERIC_STATUS.items() for v in values}


class Skip(Exception):
    """This row is not imported; the message says why."""


@dataclass
class Mapped:
    """One row of an export in our terms. Dates are as the platform wrote them."""

    name: str = ""
    status: str = "active"
    tags: tuple[str, ...] = ()
    created: str = ""
    changed: str = ""  # when the status last changed, if the export says
    extra: dict[str, str] = field(default_factory=dict)


Mapper = Callable[[Cells, str], Mapped]


def norm(header: str) -> str:
    """A header name reduced to lower-case letters and digits."""
    return re.sub(r"[^0-9a-z]+", "", header.lower())


def detect(columns: frozenset[str]) -> str:
    """The platform whose export has these (normalised) columns; 'csv' for any other."""
    if "emailaddress" in columns and columns & {"memberrating", "leid", "euid", "optintime"}:
        return "mailchimp"
    if "email" in columns and (columns & {"emaildisabled", "activesubscription"}
                               or {"subscriptiontype", "subscriptiondate"} <= columns):
        return "substack"
    if "email" in columns and columns & {"subscribedtoemails", "complimentaryplan"}:
        return "ghost"
    if {"uuid", "email", "attributes", "status"} <= columns:
        return "listmonk"
    if columns & {"email", "emailaddress"} and (
        columns & {"subscribertype", "secondaryid"} or {"type", "creationdate"} <= columns
    ):
        return "buttondown"
    return "csv"


def _first(cells: Cells, names: tuple[str, ...]) -> str:
    """The first of these columns with a value (a loop, not a generator: it runs per row)."""
    for name in names:
        value = cells.get(name)
        if value and (value := value.strip()):
            return value
    return ""


def _full_name(cells: Cells) -> str:
    name = _first(cells, _NAME)
    return name or " ".join(p for p in (_first(cells, _FIRST), _first(cells, _LAST)) if p)


def _split(cell: str, separators: str = ",;") -> tuple[str, ...]:
    cell = cell.strip().strip("[]")
    parts = re.split(f"[{re.escape(separators)}]", cell) if cell else []
    return tuple(dict.fromkeys(p.strip().strip("'\"").replace(";", ",") for p in parts if p.strip("'\" ")))


def substack(cells: Cells, member: str) -> Mapped:
    """Substack: email_disabled=true means the reader turned email off; deletion requests skip."""
    if cells.get("email", "").strip().lower().endswith("@deletion-request.substack.com"):
        raise Skip("a Substack deletion request (the reader asked to be erased)")
    disabled = cells.get("emaildisabled", "").strip().lower() == "true"
    created = _first(cells, ("createdat", "subscriptiondate"))
    return Mapped(_first(cells, _NAME), "unsubscribed" if disabled else "active", (), created)


def mailchimp(cells: Cells, member: str) -> Mapped:
    """Mailchimp: the file (subscribed/unsubscribed/cleaned) decides the status; TAGS is quoted."""
    member = member.lower()
    if "nonsubscribed" in member:  # transactional contacts who never opted in to the list
        raise Skip("a Mailchimp non-subscribed contact (never opted in)")
    if "unsubscribed" in member or cells.get("unsubtime"):
        status, changed = "unsubscribed", cells.get("unsubtime", "")
    elif "cleaned" in member or cells.get("cleantime"):  # Mailchimp "cleans" addresses that bounce
        status, changed = "bounced", cells.get("cleantime", "")
    else:
        status, changed = "active", ""
    # TAGS reads "Tag one","Tag two" inside the cell (the export doubles the quotes).
    tags = next(csv.reader([cells.get("tags", "")], skipinitialspace=True), [])
    clean = tuple(dict.fromkeys(t.strip().replace(";", ",") for t in tags if t.strip()))
    created = _first(cells, ("confirmtime", "optintime"))
    return Mapped(_full_name(cells), status, clean, created, changed)


_BUTTONDOWN_ACTIVE = {"regular", "premium", "trialed", "gifted", "churning", "pastdue", "paused", "comped"}
_BUTTONDOWN_LEFT = {"unsubscribed": "unsubscribed", "removed": "unsubscribed",
                    "undeliverable": "bounced", "complained": "complained"}
_BUTTONDOWN_SKIP = {"unactivated": "never confirmed the subscription (Buttondown: unactivated)",
                    "spammy": "flagged as likely spam by Buttondown", "blocked": "blocked in Buttondown"}


def buttondown(cells: Cells, member: str) -> Mapped:
    """Buttondown: subscriber_type (type) carries the status; unactivated people never confirmed."""
    kind = norm(_first(cells, ("subscribertype", "type")))
    if not kind:
        kind = "unsubscribed" if "unsubscribe" in member.lower() else "regular"
    if kind in _BUTTONDOWN_SKIP:
        raise Skip(_BUTTONDOWN_SKIP[kind])
    status = _BUTTONDOWN_LEFT.get(kind, "active" if kind in _BUTTONDOWN_ACTIVE else "")
    if not status:
        raise Skip(f"unknown Buttondown subscriber type {kind!r}")
    changed = _first(cells, ("unsubscriptiondate", "undeliverabilitydate")) if status != "active" else ""
    created = _first(cells, ("creationdate", "subscriptiondate", "createdat"))
    return Mapped(_first(cells, _NAME), status, _split(cells.get("tags", "")), created, changed)


def listmonk(cells: Cells, member: str) -> Mapped:
    """listmonk: enabled is active; disabled and blocklisted people are not mailed."""
    state = cells.get("status", "").strip().lower()
    status = {"enabled": "active", "disabled": "unsubscribed", "blocklisted": "unsubscribed"}.get(state)
    if status is None:
        raise Skip(f"unknown listmonk status {state!r}")
    changed = cells.get("updatedat", "") if status != "active" else ""
    return Mapped(_first(cells, _NAME), status, (), cells.get("createdat", ""), changed)


def ghost(cells: Cells, member: str) -> Mapped:
    """Ghost: subscribed_to_emails=false means unsubscribed; labels are comma-separated."""
    if cells.get("deletedat", "").strip():
        raise Skip("deleted in Ghost")
    subscribed = cells.get("subscribedtoemails", "true").strip().lower() not in ("false", "0", "no")
    return Mapped(
        _first(cells, _NAME), "active" if subscribed else "unsubscribed",
        _split(cells.get("labels", ""), ","), cells.get("createdat", ""),
    )


def generic(cells: Cells, member: str) -> Mapped:
    """Any CSV: known columns by name (any case or spacing); the rest are kept as extra columns."""
    value = _first(cells, _STATUS)
    status = _GENERIC_STATUS_OF.get(norm(value))
    if status is None:
        raise Skip(f"unknown status {value!r}")
    return Mapped(
        _full_name(cells), status, _split(_first(cells, _TAGS)), _first(cells, _CREATED),
        cells.get("updatedat", "") if status != "active" else "",
    )


MAPPERS: dict[str, Mapper] = {
    "substack": substack, "mailchimp": mailchimp, "buttondown": buttondown,
    "listmonk": listmonk, "ghost": ghost, "csv": generic,
}
PLATFORMS = ("auto", *MAPPERS)  # what `subscribers import --format` accepts: auto detects from the header
