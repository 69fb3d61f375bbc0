"""VERP: each recipient's own envelope sender, so a bounce says whom it is about and for which send.

With `[smtp] return_path = "bounces@example.com"` and `[smtp] verp = true`, the message of one
recipient of one issue goes out with `MAIL FROM:<bounces+TOKEN@example.com>`. A bounce is sent
to that address (RFC 5321 4.5.5), so it comes back carrying TOKEN even when the DSN itself is
vague (no Final-Recipient, a forwarding address, a mail system that rewrites). The mailbox must
accept `bounces+anything@` (plus addressing: Postfix's recipient_delimiter, Fastmail, Gmail...).

TOKEN is opaque, in the style of newsletter.tokens' reader ids: an HMAC-SHA256 with the newest
secret of [delivery] unsubscribe_secret_env, so nobody who sees the envelope (a relay, a
forwarding service) learns the address, and nobody can forge one for another reader. It is 25
lower-case base32 characters (some systems lower-case local parts): 5 name the issue (an HMAC of
its slug, so the issue is found among the ledgers without trying every recipient of every
issue), 20 (100 bits) the recipient within that issue. Every secret of the list is tried, so a
bounce of a message sent before a secret rotation is still understood.

Going back (`recipient_from_verp`) needs the sends: which addresses each issue went to, as the
send ledgers say (mailbox.sends reads them); this module is pure and reads no file, so the SMTP
provider can import it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Collection, Mapping, Sequence

from newsletter.subscribers.schema import email_key

ISSUE_CHARS = 5  # 25 bits: enough to tell a writer's issues apart; a clash only costs a little work
RECIPIENT_CHARS = 20  # 100 bits
TOKEN_CHARS = ISSUE_CHARS + RECIPIENT_CHARS
DELIMITER = "+"
MAX_LOCAL_PART = 64  # RFC 5321 4.5.3.1.1: servers may refuse a longer local part
_TOKEN = re.compile(rf"[a-z2-7]{{{TOKEN_CHARS}}}")


def _mac(secret: str, *parts: str, chars: int) -> str:
    digest = hmac.new(secret.encode(), "\0".join(parts).encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:chars]


def _issue_tag(secret: str, issue: str) -> str:
    return _mac(secret, "verp-issue", issue, chars=ISSUE_CHARS)


def _recipient_tag(secret: str, key: str, issue: str) -> str:
    return _mac(secret, "verp-recipient", issue, key, chars=RECIPIENT_CHARS)


def token_for(secrets: Sequence[str], key: str, issue: str) -> str:
    """The VERP token of one recipient (by same-address key) of one issue, made with the newest secret."""
    if not secrets:
        raise ValueError("a VERP token needs at least one secret")
    return _issue_tag(secrets[0], issue) + _recipient_tag(secrets[0], key, issue)


def verp_address(return_path: str, token: str) -> str:
    """`bounces@example.com` + token -> `bounces+token@example.com` (the token goes after a `+`)."""
    local, at, domain = return_path.rpartition("@")
    if not at or not local:
        raise ValueError(f"not an address: {return_path!r}")
    return f"{local}{DELIMITER}{token}@{domain}"


def verp_room(return_path: str) -> bool:
    """True when a token still fits in the return path's local part (64 characters at most)."""
    local = return_path.rpartition("@")[0]
    return len(local.encode("utf-8")) + len(DELIMITER) + TOKEN_CHARS <= MAX_LOCAL_PART


def token_in(address: str, return_path: str) -> str | None:
    """The token of a VERP address made from this return path, or None when it is not one.

    Compared without regard to case (some mail systems change the case of an address).
    """
    address = address.strip().strip("<>").lower()
    local, at, domain = return_path.lower().rpartition("@")
    prefix, suffix = f"{local}{DELIMITER}", f"@{domain}"
    if not at or not address.startswith(prefix) or not address.endswith(suffix):
        return None
    token = address[len(prefix):len(address) - len(suffix)]
    return token if _TOKEN.fullmatch(token) else None


def recipient_from_verp(address: str, return_path: str, secrets: Sequence[str],
                        sends: Mapping[str, Collection[str]]) -> tuple[str, str] | None:
    """The (issue, address) a VERP address stands for, or None.

    `sends` maps each issue's slug to the addresses it was sent to (the send ledgers); an
    address that was never sent this token (forged, another newsletter's, a secret since
    dropped) is None.
    """
    token = token_in(address, return_path)
    if token is None:
        return None
    issue_tag, recipient_tag = token[:ISSUE_CHARS], token[ISSUE_CHARS:]
    for secret in secrets:
        for issue, emails in sends.items():
            if not hmac.compare_digest(_issue_tag(secret, issue), issue_tag):
                continue
            for email in emails:
                if hmac.compare_digest(_recipient_tag(secret, email_key(email), issue), recipient_tag):
                    return issue, email
    return None
