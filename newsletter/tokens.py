"""Signed tokens for the reader's links: unsubscribe (never expires) and confirm (expires).

Both are HMAC-SHA256 signatures made with itsdangerous from the secrets in the variable that
[delivery] unsubscribe_secret_env names. That variable may hold a comma-separated list, newest
first: the newest signs, every one verifies, so a secret can be rotated without breaking the
links already in people's inboxes. Each kind of token has its own salt, so an unsubscribe token
can never stand for a confirmation or the other way round.

An unsubscribe token carries no address: only a *reader id*, an HMAC of the address's key, so the
reader service can record "this reader left" without holding the list or learning who it was.
`newsletter subscribers apply` turns the id back into an address by computing the ids of the
people on the list. A confirm token carries what the reader typed (address, name, tags), so
nobody is put on the list before they confirm.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, Signer, URLSafeTimedSerializer
from itsdangerous.signer import HMACAlgorithm

UNSUBSCRIBE_SALT = "newsletter.unsubscribe"
CONFIRM_SALT = "newsletter.confirm"
_MAX_TOKEN = 4096  # no real token is longer; a longer one is refused before any work is done


def parse_secrets(value: str) -> tuple[str, ...]:
    """Split the secret variable's value: comma-separated, newest first, blanks dropped."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


class Expired(Exception):
    """A confirm token whose time ran out (it was genuine)."""


@dataclass(frozen=True)
class Signup:
    """What a reader typed into the subscribe form, carried by the confirm token."""

    email: str
    name: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tokens:
    """Make and check the reader's tokens with one list of secrets (newest first)."""

    secrets: Sequence[str] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.secrets:
            raise ValueError("Tokens needs at least one secret")

    @property
    def _keys(self) -> list[str]:
        return list(reversed(self.secrets))  # itsdangerous: oldest to newest, the last one signs

    def reader_id(self, key: str, secret: str | None = None) -> str:
        """The opaque id of the address whose same-address key is `key` (22 URL-safe characters)."""
        mac = _keyed(secret, b"reader-id\0") if secret else self._reader_ids.copy()
        mac.update(key.encode())
        return base64.urlsafe_b64encode(mac.digest()[:16]).decode("ascii").rstrip("=")

    def reader_ids(self, key: str) -> list[str]:
        """The ids this address had under every secret (a link made before a rotation still works)."""
        return [self.reader_id(key, secret) for secret in self.secrets]

    def unsubscribe_token(self, key: str) -> str:
        """The token of an unsubscribe link: the reader id, signed for that purpose only."""
        return self._unsubscribe_signer().sign(self.reader_id(key)).decode("ascii")

    def open_unsubscribe(self, token: str) -> str | None:
        """The reader id an unsubscribe token carries, or None when it is not genuine."""
        if not token or len(token) > _MAX_TOKEN or not token.isascii():
            return None
        try:
            return self._unsubscribe_signer().unsign(token).decode("ascii")
        except BadSignature:
            return None

    def confirm_token(self, signup: Signup) -> str:
        """The token of a confirmation link, carrying the signup; checked with open_confirm."""
        payload: dict[str, Any] = {"e": signup.email}
        if signup.name:
            payload["n"] = signup.name
        if signup.tags:
            payload["t"] = list(signup.tags)
        return str(self._confirm_serializer().dumps(payload))

    def open_confirm(self, token: str, max_age: float) -> Signup | None:
        """The signup a confirm token carries; None when forged; Expired when too old."""
        if not token or len(token) > _MAX_TOKEN or not token.isascii():
            return None
        try:
            payload = self._confirm_serializer().loads(token, max_age=max(0, int(max_age)))
        except SignatureExpired:
            raise Expired(token) from None
        except BadSignature:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("e"), str):
            return None
        tags = payload.get("t", [])
        return Signup(payload["e"], str(payload.get("n", "")), tuple(str(t) for t in tags if isinstance(t, str)))

    @functools.cached_property
    def _reader_ids(self) -> hmac.HMAC:
        """The newest secret's HMAC, fed the reader-id prefix: each id is a copy of it, fed the key."""
        return _keyed(self.secrets[0], b"reader-id\0")

    def _unsubscribe_signer(self) -> Signer:
        return self._signer

    @functools.cached_property
    def _signer(self) -> Signer:
        """One Signer for every token (a send signs one per recipient); it keeps no state between signs."""
        return _Signer(self._keys, salt=UNSUBSCRIBE_SALT, key_derivation="hmac", digest_method=hashlib.sha256,
                       algorithm=_HMAC())

    def _confirm_serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._keys, salt=CONFIRM_SALT,
                                      signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256})


@functools.lru_cache(maxsize=16)
def _hmac_of(key: bytes, prefix: bytes) -> hmac.HMAC:
    return hmac.new(key, prefix, hashlib.sha256)


def _keyed(key: str | bytes, prefix: bytes = b"") -> hmac.HMAC:
    """A fresh HMAC-SHA256 with this key, already fed `prefix`: a copy of one set up once.

    Setting up the key is most of an HMAC of a short message; a large send makes two per reader.
    """
    return _hmac_of(key.encode() if isinstance(key, str) else key, prefix).copy()


class _HMAC(HMACAlgorithm):
    """itsdangerous's HMAC-SHA256, from a keyed copy: the same signatures, made about twice as fast."""

    def __init__(self) -> None:
        super().__init__(hashlib.sha256)

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        mac = _keyed(key)
        mac.update(value)
        return mac.digest()


class _Signer(Signer):
    """itsdangerous's Signer with the signing key derived once, not once a token."""

    @functools.cached_property
    def _signing_key(self) -> bytes:
        return super().derive_key()

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        return self._signing_key if secret_key is None else super().derive_key(secret_key)


def resolve_readers(tokens: Tokens, keys: Iterable[str], wanted: set[str]) -> dict[str, str]:
    """Map each wanted reader id to the key of the address it stands for (under any secret)."""
    found: dict[str, str] = {}
    if not wanted:
        return found
    for key in keys:
        for rid in tokens.reader_ids(key):
            if rid in wanted:
                found[rid] = key
    return found
