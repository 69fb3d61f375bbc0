"""What a provider must never let out: a secret in text it prints or stores, a password in clear.

Servers echo what they were sent: an SMTP server may quote the AUTH line in its 535 answer, an
HTTP API may quote the key in an error body. Every piece of server text a provider puts into an
error, a report or the ledger goes through redact() first, with the secrets it holds.
"""

from __future__ import annotations

import base64
import ipaddress
import json
from collections.abc import Iterable
from urllib.parse import quote

MASK = "[redacted]"


def _forms(secret: str) -> set[str]:
    """The ways a secret can come back: as is, base64 (SMTP AUTH), JSON-escaped, URL-quoted."""
    raw = secret.encode("utf-8")
    forms = {secret, base64.b64encode(raw).decode("ascii"), json.dumps(secret)[1:-1],
             json.dumps(secret, ensure_ascii=False)[1:-1], quote(secret, safe="")}
    return {form for form in forms if form}


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret (and its encoded forms) in text with [redacted].

    Longer forms go first, so a form that contains another is masked whole. Every non-empty
    secret is masked, however short: a garbled message is better than a leaked password.
    """
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= _forms(secret)
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


def is_loopback(host: str) -> bool:
    """True for this machine only: localhost, 127.0.0.0/8, ::1 (never decided by a DNS lookup)."""
    name = host.strip().rstrip(".").lower().removeprefix("[").removesuffix("]")
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
