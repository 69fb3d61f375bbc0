"""newsletter.toml -> one frozen Settings.

Precedence, lowest first: the defaults (config_schema), newsletter.toml, environment variables named
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
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from newsletter.config_schema import (
    SECTION_CHECKS,
    SECTIONS,
    ArchiveSection,
    DeliverySection,
    MailboxSection,
    NewsletterSection,
    Origin,
    ReadersSection,
    SenderSection,
    SendGridSection,
    SMTPSection,
    SubscribersSection,
)
from newsletter.errors import ConfigError

CONFIG_NAME = "newsletter.toml"
ENV_PREFIX = "NEWSLETTER_"


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
    readers: ReadersSection = ReadersSection()
    mailbox: MailboxSection = MailboxSection()

    def path(self, relative: str | Path) -> Path:
        """Resolve a path from the config against the newsletter folder."""
        return (self.root / relative).resolve() if not Path(relative).is_absolute() else Path(relative)

    def ledger_path(self, slug: str) -> Path:
        """sends/<slug>.jsonl: the send ledger of one issue, in [delivery] ledger_dir."""
        return self.path(self.delivery.ledger_dir) / f"{slug}.jsonl"

    @property
    def inbox_dir(self) -> Path:
        """The reader service's event journal folder: [readers] inbox."""
        return self.path(self.readers.inbox)

    @property
    def readers_url(self) -> str:
        """[readers] url with exactly one trailing slash, or "" when there is no reader service."""
        return self.readers.url.rstrip("/") + "/" if self.readers.url else ""

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
    origin = Origin(path)
    for section, values in layered.items():
        for key, value in values.items() if isinstance(values, dict) else ():
            if isinstance(value, _EnvString):
                origin.names[(section, key)] = f"{value.origin}: [{section}] {key}"
    for dotted, value in (overrides or {}).items():
        if value is not None:
            section, _, key = dotted.partition(".")
            layered.setdefault(section, {})[key] = value
            origin.names[(section, key)] = f"the command line: [{section}] {key}"
    sections = _build_sections(path, layered, problems)
    for name, built in sections.items():
        SECTION_CHECKS[name](built, origin, problems)
    if problems:
        raise ConfigError(problems)
    return Settings(root=path.parent.resolve(), config_path=path, **sections)


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
            problems.append(f"environment variable {name}: unknown section [{section}]")
            continue
        layer.setdefault(section, {})[key] = _EnvString(value, name)
    return layer


class _EnvString(str):
    """A string from the environment: coerced to the field's type, named in errors."""

    origin: str

    def __new__(cls, value: str, origin: str) -> _EnvString:
        obj = super().__new__(cls, value)
        obj.origin = f"environment variable {origin}"
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
    """The section with every value that passed; None when a required value is missing or wrong.

    A value that fails is left at its default, so the section's other values are still checked
    and every problem is reported in one go.
    """
    hints = typing.get_type_hints(cls)
    fields = {_key(f): f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, raw in values.items():
        source = raw.origin if isinstance(raw, _EnvString) else str(path)
        if key not in fields:
            problems.append(f"{source}: unknown key in [{section}]" if isinstance(raw, _EnvString)
                            else f"{path}: [{section}] {key}: unknown key")
            continue
        where = f"{source}: [{section}] {key}"
        f = fields[key]
        try:
            kwargs[f.name] = _coerce(raw, hints[f.name])
        except (TypeError, ValueError) as exc:
            problems.append(f"{where}: {exc}")
    complete = True
    for key, f in fields.items():
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in kwargs:
            complete = False
            if key not in values:
                problems.append(f"{path}: [{section}] {key}: required value is missing")
    return cls(**kwargs) if complete else None


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
    if hint is bool:
        if from_env:
            word = str(value).strip().lower()
            if word not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"expected true or false, got {str(value)!r}")
            return word in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {value!r}")
        return value
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
