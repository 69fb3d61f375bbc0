"""Other platforms' subscriber exports -> rows for the list. Touches no subscriber file.

read_export() takes a CSV (or a ZIP of CSVs, as Mailchimp and Substack export them), decodes
it, finds the platform from the header row (platforms), and maps each row to our columns,
skipping with a reason and a file:line what cannot be imported. Decoding is never a guess:
UTF-8, or UTF-16/UTF-32/UTF-8 with a byte-order mark; anything else (a spreadsheet's cp1252 or
Latin-1) is refused with a hint showing how a line would read with --encoding, so nothing is
ever imported as mojibake.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.errors import SubscriberError
from newsletter.subscribers.platforms import (
    EMAIL_COLUMNS,
    KNOWN_GENERIC,
    MAPPERS,
    PLATFORMS,
    Mapped,
    Skip,
    detect,
    norm,
)
from newsletter.subscribers.schema import (
    STATUS_RANK,
    control_character,
    email_key,
    iso_utc,
    normalize_email,
    shown,
    tidy_name,
)

_BOMS = (  # UTF-32 first: its little-endian mark begins with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
# What a Western European spreadsheet's names decode to in cp1252: letters, quotes, dashes, euro.
_WESTERN = re.compile(
    "[\x00-\x7f\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e"
    "\u2013\u2014\u2018\u2019\u201c\u201d\u20ac]*"
)
_GO_TIME = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) ([+-]\d\d)(\d\d)\b")


@dataclass
class ImportRow:
    """One person from an export, in our terms (email normalised, dates ISO 8601 UTC or '')."""

    where: str  # file:line
    email: str
    name: str = ""
    status: str = "active"
    tags: tuple[str, ...] = ()
    created_at: str = ""
    updated_at: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class ImportBatch:
    """Everything read from one export: one row per address, and what was skipped and why."""

    platform: str
    encoding: str
    rows: dict[str, ImportRow] = field(default_factory=dict)  # email key -> row
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file:line, reason)
    extra_columns: list[str] = field(default_factory=list)  # a generic CSV's own columns
    notes: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        return f"import:{self.platform}"


def read_export(
    path: Path, platform: str = "auto", encoding: str | None = None, *, validate: bool = True
) -> ImportBatch:
    """Read an export file (CSV or ZIP) into an ImportBatch. Raises SubscriberError if unreadable.

    validate=False leaves addresses as written (trimmed), keyed by email_key, for the caller to
    validate_rows() only those it will write: email-validator is most of an import's time.
    """
    if platform not in PLATFORMS:
        raise SubscriberError(f"unknown format {platform!r} (expected {', '.join(PLATFORMS)})")
    where = shown(path)
    try:
        if zipfile.is_zipfile(path):
            batch = _read_zip(path, where, platform, encoding)
        else:
            data = path.read_bytes()
            text, used = decode(data, where, encoding)
            batch = ImportBatch(platform, used)
            _read_table(batch, text, where, path.name, platform)
    except FileNotFoundError:
        raise SubscriberError(f"{where}: no such file") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise SubscriberError(f"{where}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
    if validate:
        validate_rows(batch, list(batch.rows))
    return batch


def validate_rows(batch: ImportBatch, keys: Iterable[str]) -> list[str]:
    """Validate and normalise these rows' addresses; skip the invalid ones (with the reason).

    Returns the keys that normalising changed (a punycode domain, say), as they now are.
    """
    changed = []
    for key in keys:
        row = batch.rows.pop(key)
        try:
            row.email = normalize_email(row.email)
        except SubscriberError as exc:
            batch.skipped.append((row.where, str(exc)))
            continue
        if email_key(row.email) != key:
            changed.append(email_key(row.email))
        _add(batch, row)
    batch.skipped.sort(key=_place)
    return changed


def _place(skip: tuple[str, str]) -> tuple[str, int]:
    """Sort skips by file, then line number."""
    where, _, line = skip[0].rpartition(":")
    return (where, int(line)) if line.isdigit() else (skip[0], 0)


def decode(data: bytes, where: str, encoding: str | None = None) -> tuple[str, str]:
    """Decode an export: the given encoding, a byte-order mark's, or UTF-8; never a guess."""
    if encoding is None:
        encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise SubscriberError(f"unknown encoding {encoding!r}", hint="e.g. utf-8, cp1252, latin-1, utf-16") from None
    try:
        return data.decode(encoding).removeprefix("\ufeff"), encoding
    except UnicodeDecodeError as exc:
        raise _not_encoded(data, exc, where, encoding) from None


def _not_encoded(data: bytes, exc: UnicodeDecodeError, where: str, encoding: str) -> SubscriberError:
    line = data.count(b"\n", 0, exc.start) + 1
    raw = data[data.rfind(b"\n", 0, exc.start) + 1 :].split(b"\n", 1)[0].strip()
    message = f"{where}:{line}: not {encoding} (byte 0x{data[exc.start]:02x} in {raw.decode(encoding, 'replace')!r})"
    if data.count(b"\x00") > len(data) // 4:
        return SubscriberError(message, hint="it looks like UTF-16 without a byte-order mark: try --encoding utf-16-le")
    western = raw.decode("cp1252", "replace")
    if _WESTERN.fullmatch(western):
        hint = (f"if it was saved by a spreadsheet on Windows it is probably cp1252, which reads line {line} "
                f"as {western!r}; if that is right, run again with --encoding cp1252")
    else:
        hint = "pass --encoding with the file's encoding (e.g. cp1252, latin-1, cp1250, mac_roman)"
    return SubscriberError(message, hint=hint)


def _read_zip(path: Path, where: str, platform: str, encoding: str | None) -> ImportBatch:
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.namelist()
                   if m.lower().endswith(".csv") and not m.startswith("__MACOSX/") and "/." not in f"/{m}"]
        batch = ImportBatch(platform, encoding or "utf-8")
        for member in sorted(members, key=lambda m: ("unsubscribed" not in m, m)):  # tombstones first
            text, batch.encoding = decode(archive.read(member), f"{where}:{member}", encoding)
            if not _read_table(batch, text, f"{where}:{member}", member, platform, optional=True):
                batch.notes.append(f"{where}:{member}: not a subscriber list (no email column), ignored")
    if not batch.rows and not batch.skipped:
        raise SubscriberError(f"{where}: no subscriber list in this ZIP (no CSV with an email column)")
    return batch


def _read_table(
    batch: ImportBatch, text: str, where: str, member: str, platform: str, *, optional: bool = False
) -> bool:
    """Map every row of one CSV into the batch; False if it has no email column (and optional)."""
    found = _header(text, where, optional)
    if found is None:
        return False
    delimiter, names = found
    columns = frozenset(names)
    kind = detect(columns) if platform == "auto" else platform
    if batch.platform == "auto" or batch.platform == "csv" and kind != "csv":
        batch.platform = kind
    email_column = next(c for c in EMAIL_COLUMNS if c in columns)
    extras = [(i, n) for i, n in enumerate(_raw_names(text, delimiter))
              if kind == "csv" and n.strip() and names[i] not in KNOWN_GENERIC]
    batch.extra_columns = list(dict.fromkeys([*batch.extra_columns, *(n for _, n in extras)]))
    mapper = MAPPERS[kind]
    for line, values in _rows(text, delimiter, where):
        cells = dict(zip(names, values, strict=False))
        address = cells.get(email_column, "").strip()
        here = f"{where}:{line}"
        if not address:
            if any(v.strip() for v in values):
                batch.skipped.append((here, "no email address"))
            continue
        try:
            mapped = mapper(cells, member)
        except Skip as exc:
            batch.skipped.append((here, str(exc)))
            continue
        mapped.extra = {n: values[i].strip() for i, n in extras if i < len(values) and values[i].strip()}
        _add(batch, _row(batch, here, address, mapped))
    return True


def _header(text: str, where: str, optional: bool) -> tuple[str, list[str]] | None:
    first = next((line for line in text.splitlines() if line.strip()), "")
    for delimiter in (",", ";", "\t"):
        names = [norm(n) for n in next(csv.reader([first], delimiter=delimiter), [])]
        if any(n in EMAIL_COLUMNS for n in names):
            return delimiter, names
    if optional:
        return None
    raise SubscriberError(
        f"{where}:1: no email column (the header reads {first.strip()[:120]!r})",
        hint="the first row must name the columns, one of them 'email' (any case or spacing)",
    )


def _raw_names(text: str, delimiter: str) -> list[str]:
    first = next((line for line in text.splitlines() if line.strip()), "")
    return next(csv.reader([first], delimiter=delimiter), [])


def _rows(text: str, delimiter: str, where: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header_seen = False
        for values in reader:
            if not header_seen:
                header_seen = any(v.strip() for v in values)
                continue
            yield reader.line_num, values
    except csv.Error as exc:
        raise SubscriberError(f"{where}:{reader.line_num}: broken quoting ({exc})") from None


def _row(batch: ImportBatch, where: str, email: str, mapped: Mapped) -> ImportRow:
    # A name goes into mail headers: a spreadsheet's multi-line cell is made one line, not refused,
    # so that the person is not lost (the list reader refuses control characters in a name).
    name = tidy_name(mapped.name) if control_character(mapped.name) else mapped.name
    return ImportRow(
        where, email, name, mapped.status, mapped.tags,
        _when(batch, where, mapped.created), _when(batch, where, mapped.changed), mapped.extra,
    )


def _when(batch: ImportBatch, where: str, text: str) -> str:
    """A platform's date in our form; an unreadable one is left empty and noted once per file."""
    if not text.strip():
        return ""
    go = _GO_TIME.match(text.strip())  # listmonk writes Go's time.String(): "... +0000 UTC"
    found = iso_utc(f"{go[1]}{go[2]}:{go[3]}" if go else text)
    if found is None:
        note = f"{where}: dates like {text.strip()!r} were not understood; the import time is used instead"
        if not any(n.endswith("the import time is used instead") for n in batch.notes):
            batch.notes.append(note)
        return ""
    return found


def _add(batch: ImportBatch, row: ImportRow) -> None:
    """Add a row to the batch, merging a repeat of an address already in it."""
    key = email_key(row.email)
    first = batch.rows.get(key)
    if first is None:
        batch.rows[key] = row
        return
    if STATUS_RANK[row.status] > STATUS_RANK[first.status]:
        first.status, first.updated_at = row.status, row.updated_at or first.updated_at
    first.name = first.name or row.name
    first.tags = tuple(dict.fromkeys(first.tags + row.tags))
    first.created_at = min(filter(None, (first.created_at, row.created_at)), default="")
    first.extra = {**row.extra, **first.extra}
    batch.skipped.append((row.where, f"same address as {first.where}: merged into it"))
