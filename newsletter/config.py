"""newsletter.toml -> one frozen Settings.

Precedence, lowest first: the defaults below, newsletter.toml, environment variables named
NEWSLETTER_<SECTION>__<KEY> (e.g. NEWSLETTER_DELIVERY__PROVIDER=sendgrid), then the CLI's own
options (None values dropped). Every problem is collected and reported together.
Secrets never live here: only the *names* of the environment variables that hold them.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from newsletter.errors import ConfigError

CONFIG_NAME = "newsletter.toml"
ENV_PREFIX = "NEWSLETTER_"
PROVIDERS = ("outbox", "sendgrid", "smtp")


@dataclass(frozen=True)
class NewsletterSection:
    name: str
    url: str  # where the web archive lives; 'view in browser' links and absolute URLs
    description: str = ""
    author: str = ""
    language: str = "en"
    direction: str = "ltr"
    postal_address: str = ""
    subscribe_url: str = ""  # a sign-up page, linked from the web archive
    subscribe_mailto: str = ""  # or an address readers write to, to subscribe


@dataclass(frozen=True)
class SenderSection:
    from_: str = field(metadata={"key": "from"})
    reply_to: str = ""


@dataclass(frozen=True)
class SubscribersSection:
    file: str = "subscribers.csv"


@dataclass(frozen=True)
class DeliverySection:
    provider: str = "outbox"
    unsubscribe_mailto: str = ""
    unsubscribe_url: str = ""  # https URL template with {email} and {token}
    unsubscribe_secret_env: str = "NEWSLETTER_UNSUBSCRIBE_SECRET"
    outbox_dir: str = "outbox"
    ledger_dir: str = "sends"
    list_id: str = ""  # default: <slug-of-name>.<sender domain>


@dataclass(frozen=True)
class SendGridSection:
    host: str = "https://api.sendgrid.com"
    unsubscribe_group_id: int | None = None
    categories: list[str] = field(default_factory=lambda: ["newsletter"])
    timeout: float = 30.0
    batch_size: int = 1000


@dataclass(frozen=True)
class SMTPSection:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"  # starttls | tls | none
    username: str = ""
    password_env: str = "SMTP_PASSWORD"
    timeout: float = 30.0


@dataclass(frozen=True)
class ArchiveSection:
    out: str = "site"
    feed_entries: int = 20  # newest issues in feed.xml; 0 = all


SECTIONS: dict[str, type] = {
    "newsletter": NewsletterSection,
    "sender": SenderSection,
    "subscribers": SubscribersSection,
    "delivery": DeliverySection,
    "sendgrid": SendGridSection,
    "smtp": SMTPSection,
    "archive": ArchiveSection,
}


@dataclass(frozen=True)
class Settings:
    """Everything the library needs to know about one newsletter folder."""

    root: Path  # the folder holding newsletter.toml; relative paths are resolved against it
    config_path: Path
    newsletter: NewsletterSection
    sender: SenderSection
    subscribers: SubscribersSection = SubscribersSection()
    delivery: DeliverySection = DeliverySection()
    sendgrid: SendGridSection = SendGridSection()
    smtp: SMTPSection = SMTPSection()
    archive: ArchiveSection = ArchiveSection()

    def path(self, relative: str | Path) -> Path:
        """Resolve a path from the config against the newsletter folder."""
        return (self.root / relative).resolve() if not Path(relative).is_absolute() else Path(relative)

    @property
    def issues_dir(self) -> Path:
        return self.root / "issues"

    @property
    def subscribers_path(self) -> Path:
        return self.path(self.subscribers.file)

    @property
    def sender_address(self) -> str:
        return parseaddr(self.sender.from_)[1]

    @property
    def sender_domain(self) -> str:
        return self.sender_address.rpartition("@")[2].lower()


def _key(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("key", f.name))


def find_config(start: Path | None = None) -> Path:
    """Return newsletter.toml in `start` (default: the current folder)."""
    path = (start or Path.cwd()) / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(
            [f"{path}: no {CONFIG_NAME} here"],
            hint="run 'newsletter init' to create one, or pass --config PATH",
        )
    return path


def load_settings(
    config_path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: typing.Mapping[str, str] | None = None,
) -> Settings:
    """Read newsletter.toml, apply env and CLI overrides, validate, return Settings.

    overrides maps "section.key" to a value; None values are dropped.
    """
    path = config_path if config_path is not None else find_config()
    if not path.is_file():
        raise ConfigError([f"{path}: no such file"], hint="pass --config PATH to a newsletter.toml")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    problems: list[str] = []
    layered = _merge(data, _env_layer(environ if environ is not None else os.environ, problems))
    for dotted, value in (overrides or {}).items():
        if value is not None:
            section, _, key = dotted.partition(".")
            layered.setdefault(section, {})[key] = value
    sections = _build_sections(path, layered, problems)
    if problems:
        raise ConfigError(problems)
    settings = Settings(root=path.parent.resolve(), config_path=path, **sections)
    _validate(path, settings, problems)
    if problems:
        raise ConfigError(problems)
    return settings


def _merge(base: dict[str, Any], top: dict[str, dict[str, Any]]) -> dict[str, Any]:
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for section, values in top.items():
        target = merged.setdefault(section, {})
        if isinstance(target, dict):
            target.update(values)
    return merged


def _env_layer(environ: typing.Mapping[str, str], problems: list[str]) -> dict[str, dict[str, Any]]:
    """Collect NEWSLETTER_<SECTION>__<KEY> variables as {section: {key: raw string}}."""
    layer: dict[str, dict[str, Any]] = {}
    for name, value in environ.items():
        if not name.upper().startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if section not in SECTIONS:
            problems.append(f"environment {name}: unknown section [{section}]")
            continue
        layer.setdefault(section, {})[key] = _EnvString(value, name)
    return layer


class _EnvString(str):
    """A string from the environment: coerced to the field's type, named in errors."""

    origin: str

    def __new__(cls, value: str, origin: str) -> _EnvString:
        obj = super().__new__(cls, value)
        obj.origin = origin
        return obj


def _build_sections(path: Path, data: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    built: dict[str, Any] = {}
    for section, values in data.items():
        if section not in SECTIONS:
            problems.append(f"{path}: unknown section [{section}]")
            continue
        if not isinstance(values, dict):
            problems.append(f"{path}: [{section}] must be a table")
            continue
        obj = _build_section(path, section, SECTIONS[section], values, problems)
        if obj is not None:
            built[section] = obj
    for required in ("newsletter", "sender"):
        if required not in data:
            problems.append(f"{path}: missing section [{required}]")
    return built


def _build_section(
    path: Path, section: str, cls: type, values: dict[str, Any], problems: list[str]
) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {_key(f): f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    ok = True
    for key, raw in values.items():
        where = raw.origin if isinstance(raw, _EnvString) else f"{path}: [{section}] {key}"
        if key not in fields:
            problems.append(f"{where}: unknown key" + (f" in [{section}]" if isinstance(raw, _EnvString) else ""))
            ok = False
            continue
        f = fields[key]
        try:
            kwargs[f.name] = _coerce(raw, hints[f.name])
        except (TypeError, ValueError) as exc:
            problems.append(f"{where}: {exc}")
            ok = False
    for key, f in fields.items():
        missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if missing and f.name not in kwargs and key not in values:
            problems.append(f"{path}: [{section}] {key}: required value is missing")
            ok = False
    return cls(**kwargs) if ok else None


def _coerce(value: Any, hint: Any) -> Any:
    """Check (TOML) or convert (environment string) a value to the field's declared type."""
    from_env = isinstance(value, _EnvString)
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType):  # only `X | None` is used
        inner = next(a for a in args if a is not type(None))
        if value is None or (from_env and value.strip() == ""):
            return None
        return _coerce(value, inner)
    if typing.get_origin(hint) is list:
        if from_env:
            return [part.strip() for part in str(value).split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TypeError(f"expected a list of strings, got {value!r}")
        return list(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return str(value)
    if hint in (int, float):
        if from_env:
            try:
                return hint(value)
            except ValueError:
                kind = "an integer" if hint is int else "a number"
                raise ValueError(f"expected {kind}, got {str(value)!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (hint is int and isinstance(value, float)):
            raise TypeError(f"expected {'an integer' if hint is int else 'a number'}, got {value!r}")
        return hint(value)
    raise TypeError(f"unsupported type {hint!r}")  # pragma: no cover - a bug in the schema


def _validate(path: Path, s: Settings, problems: list[str]) -> None:
    """Checks that span more than one value's type."""
    where = f"{path}:"
    url = urlsplit(s.newsletter.url)
    if url.scheme != "https" or not url.netloc:
        problems.append(f"{where} [newsletter] url: must be an absolute https:// URL, got {s.newsletter.url!r}")
    if s.newsletter.direction not in ("ltr", "rtl"):
        problems.append(f"{where} [newsletter] direction: must be 'ltr' or 'rtl'")
    name, addr = parseaddr(s.sender.from_)
    if "@" not in addr or "\n" in s.sender.from_ or "\r" in s.sender.from_:
        problems.append(f"{where} [sender] from: not an address like 'Name <you@example.com>': {s.sender.from_!r}")
    if s.sender.reply_to and "@" not in parseaddr(s.sender.reply_to)[1]:
        problems.append(f"{where} [sender] reply_to: not an address: {s.sender.reply_to!r}")
    if s.delivery.provider not in PROVIDERS:
        choices = ", ".join(PROVIDERS)
        problems.append(f"{where} [delivery] provider: must be one of {choices}, got {s.delivery.provider!r}")
    if s.delivery.unsubscribe_url:
        u = urlsplit(s.delivery.unsubscribe_url)
        if u.scheme != "https" or not u.netloc:
            problems.append(f"{where} [delivery] unsubscribe_url: must be an https:// URL")
        elif "{email}" not in s.delivery.unsubscribe_url and "{token}" not in s.delivery.unsubscribe_url:
            problems.append(f"{where} [delivery] unsubscribe_url: must contain {{email}} and/or {{token}}")
    mailto = s.delivery.unsubscribe_mailto
    if mailto and "@" not in mailto.removeprefix("mailto:").split("?")[0]:
        problems.append(f"{where} [delivery] unsubscribe_mailto: not an address: {mailto!r}")
    _validate_archive(where, s, problems)
    if s.smtp.security not in ("starttls", "tls", "none"):
        problems.append(f"{where} [smtp] security: must be starttls, tls or none")
    if not 1 <= s.sendgrid.batch_size <= 1000:
        problems.append(f"{where} [sendgrid] batch_size: must be between 1 and 1000")


def _validate_archive(where: str, s: Settings, problems: list[str]) -> None:
    """The keys the web archive reads: how to subscribe, and the feed's length."""
    sub = urlsplit(s.newsletter.subscribe_url)
    if s.newsletter.subscribe_url and (sub.scheme != "https" or not sub.netloc):
        got = s.newsletter.subscribe_url
        problems.append(f"{where} [newsletter] subscribe_url: must be an https:// URL, got {got!r}")
    mailto = s.newsletter.subscribe_mailto
    if mailto and "@" not in mailto.removeprefix("mailto:").split("?")[0]:
        problems.append(f"{where} [newsletter] subscribe_mailto: not an address: {mailto!r}")
    if s.archive.feed_entries < 0:
        problems.append(f"{where} [archive] feed_entries: must be 0 (all issues) or more")
