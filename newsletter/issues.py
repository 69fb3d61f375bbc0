"""issues/*.md -> Issue: front matter, slug, dates. Knows nothing of HTML."""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from pathlib import Path
from typing import Any

from newsletter.errors import IssueError
from newsletter.files import atomic_write_text, create_exclusive, sweep_temps
from newsletter.models import ISSUE_STATUSES, Issue

FRONT_MATTER_KEYS = {
    "title", "subtitle", "date", "slug", "preheader", "subject", "status", "author", "tags",
}
_FILENAME = re.compile(r"^(?P<date>\d{4}-\d{2}-\d{2})-(?P<slug>.+)$")
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SLUG_AUTO_LENGTH = 80  # a slug made from a title is cut here, at a word if it can be
_APOSTROPHES = str.maketrans("", "", "\u2019\u2018\u02bc")  # Hailey’s -> haileys, as slugs always had it
SLUG_MAX_LENGTH = 100  # a slug is a file and folder name: well under the 255 bytes file systems allow


def split_filename(path: Path) -> tuple[str | None, str | None]:
    """(date text, slug) from a file named YYYY-MM-DD-slug.md; (None, None) for any other name."""
    match = _FILENAME.match(path.stem)
    return (match.group("date"), match.group("slug")) if match else (None, None)


def slugify(text: str) -> str:
    """Make a URL slug: lower-case ASCII words joined by hyphens, from a title in any script.

    Slugs become file names, URLs, Message-ID parts, SendGrid categories and ledger names, where
    ASCII is the one safe alphabet, so every script is transliterated (anyascii: 'Καλημέρα' ->
    'kalimera', '潮だまりは' -> 'chao-damariha'). A title with no letters or digits at all ('???')
    gets 'issue-' and a short hash of the title: distinct titles never share a slug by accident.
    """
    import hashlib

    from anyascii import anyascii

    words = []
    for char in unicodedata.normalize("NFC", text).translate(_APOSTROPHES):
        ascii_char = anyascii(char)
        # Scripts without letter case (Chinese, Japanese kanji, Hangul) come back as capitalised
        # syllables with no spaces: a hyphen around each keeps the slug readable (ni-hao-shi-jie).
        if not char.isascii() and char.lower() == char.upper() and ascii_char[:1].isupper():
            ascii_char = f" {ascii_char} "
        words.append(ascii_char)
    slug = re.sub(r"[^a-z0-9]+", "-", "".join(words).lower()).strip("-")
    slug = slug[:SLUG_AUTO_LENGTH].rstrip("-")
    if slug:
        return slug
    return "issue-" + hashlib.sha256(text.strip().encode("utf-8", "surrogatepass")).hexdigest()[:8]


def slug_problem(slug: str) -> str | None:
    """What is wrong with a slug given by hand, or None if it is a good one."""
    if len(slug) > SLUG_MAX_LENGTH:
        return f"slug {slug[:20]!r}... is {len(slug)} characters: at most {SLUG_MAX_LENGTH}"
    if not SLUG_PATTERN.match(slug):
        return f"slug {slug!r} must be lower-case letters, digits and hyphens"
    return None


def split_front_matter(path: Path, text: str) -> tuple[str, str, int]:
    """Split a file into (YAML front matter, Markdown body, line where the body starts)."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise IssueError(f"{path}:1: no front matter (the file must start with a '---' line)")
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() in ("---", "..."):
            return "".join(lines[1:i]), "".join(lines[i + 1 :]), i + 2
    raise IssueError(f"{path}:1: front matter is not closed (no second '---' line)")


def parse_issue(path: Path, text: str | None = None) -> Issue:
    """Read one issue file into an Issue, or raise IssueError naming file:line."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise IssueError(f"{path}: no such issue file") from None
        except UnicodeDecodeError as exc:
            raise IssueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    yaml_text, body, body_line = split_front_matter(path, text)
    meta = _load_yaml(path, yaml_text)
    return _issue_from_meta(path, meta, body, body_line, yaml_text)


def _load_yaml(path: Path, yaml_text: str) -> dict[str, Any]:
    import yaml

    class _Loader(yaml.SafeLoader):
        """Dates stay text here; _issue_date parses them and reports a bad one with its line."""

    _Loader.yaml_implicit_resolvers = {
        ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    try:
        meta = yaml.load(yaml_text, Loader=_Loader) or {}  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise IssueError(f"{path}:{line}: front matter is not valid YAML: {problem}") from None
    if not isinstance(meta, dict):
        raise IssueError(f"{path}:2: front matter must be 'key: value' lines")
    return meta


def _line_of(yaml_text: str, key: str) -> int:
    for i, line in enumerate(yaml_text.splitlines(), start=2):
        if line.split(":", 1)[0].strip() == key:
            return i
    return 1


def _issue_from_meta(path: Path, meta: dict[str, Any], body: str, body_line: int, yaml_text: str) -> Issue:
    def where(key: str) -> str:
        return f"{path}:{_line_of(yaml_text, key)}"

    for key in meta:
        if key not in FRONT_MATTER_KEYS:
            raise IssueError(
                f"{where(str(key))}: unknown front matter key {key!r}",
                hint="known keys: " + ", ".join(sorted(FRONT_MATTER_KEYS)),
            )
    strings: dict[str, str] = {}
    for key in ("title", "subtitle", "preheader", "subject", "author", "slug", "status"):
        value = meta.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise IssueError(f"{where(key)}: {key} must be text")
        strings[key] = str(value).strip()
        try:
            strings[key].encode("utf-8")
        except UnicodeEncodeError:
            raise IssueError(f"{where(key)}: {key} has an escape that is not a character (a lone surrogate)") from None
        if "\n" in strings[key] and key != "preheader":
            raise IssueError(f"{where(key)}: {key} must be one line")
    if not strings["title"]:
        raise IssueError(f"{where('title')}: front matter needs a title")
    file_date, file_slug = split_filename(path)
    date = _issue_date(meta.get("date"), file_date, where("date"))
    slug = strings["slug"] or file_slug or slugify(path.stem)
    problem = slug_problem(slug)
    if problem:
        raise IssueError(f"{where('slug')}: {problem}")
    status = strings["status"] or "draft"
    if status not in ISSUE_STATUSES:
        raise IssueError(f"{where('status')}: status must be one of {', '.join(ISSUE_STATUSES)}, got {status!r}")
    return Issue(
        path=path, title=strings["title"], date=date, slug=slug, status=status, body=body,
        body_line=body_line, subtitle=strings["subtitle"], preheader=strings["preheader"],
        subject=strings["subject"], author=strings["author"],
    )


def _issue_date(value: Any, file_date: str | None, where: str) -> dt.date:
    if value is None or value == "":
        if file_date is None:
            raise IssueError(f"{where}: no date (add 'date: YYYY-MM-DD' or name the file YYYY-MM-DD-slug.md)")
        value = file_date
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise IssueError(f"{where}: date {value!r} is not YYYY-MM-DD") from None


def list_issues(issues_dir: Path) -> list[Path]:
    """Return the issue files in issues_dir, newest (by file name) first."""
    if not issues_dir.is_dir():
        return []
    return sorted((p for p in issues_dir.glob("*.md") if not p.name.startswith(".")), reverse=True)


def load_issues(issues_dir: Path) -> list[Issue]:
    """Parse every issue in issues_dir, newest first; the first bad file raises."""
    issues = [parse_issue(p) for p in list_issues(issues_dir)]
    return sorted(issues, key=lambda i: (i.date, i.slug), reverse=True)


def locate_issue(issues_dir: Path, slug: str, *, skip_broken: bool = False) -> Path | None:
    """The file for a slug: by file name (or stem), then by the slug in its front matter.

    A file whose front matter does not parse raises, unless skip_broken passes over it.
    """
    paths = list_issues(issues_dir)
    for path in paths:
        if slug in (path.stem, split_filename(path)[1]):
            return path
    for path in paths:  # a slug set in front matter, unlike the file name
        try:
            if parse_issue(path).slug == slug:
                return path
        except IssueError:
            if not skip_broken:
                raise
    return None


def find_issue(issues_dir: Path, ref: str) -> Issue:
    """Find an issue by path or by slug (also accepts the file stem).

    An issue whose slug another file in issues_dir also has is refused, naming both files: the
    two would share one ledger, so the second would be found "already sent" and never go out.
    """
    candidate = Path(ref)
    if candidate.suffix == ".md" or candidate.is_file():
        issue = parse_issue(candidate)
    else:
        path = locate_issue(issues_dir, ref)
        if path is None:
            raise IssueError(
                f"{issues_dir}: no issue with slug or path {ref!r}",
                hint="'newsletter issues' lists the issues",
            )
        issue = parse_issue(path)
    other = slug_owner(issues_dir, issue.slug, besides=issue.path)
    if other is not None:
        raise IssueError(
            f"{issue.path}: slug {issue.slug!r} is also the slug of {other}",
            hint="give one of them another 'slug:' in its front matter (or rename its file)",
        )
    return issue


def slug_owner(issues_dir: Path, slug: str, besides: Path | None = None) -> Path | None:
    """The issue file in issues_dir with this slug, other than `besides`; None if there is none.

    A file that does not parse counts with the slug in its file name.
    """
    me = besides.resolve() if besides is not None else None
    for path in list_issues(issues_dir):
        if _slug_of(path) == slug and path.resolve() != me:
            return path
    return None


def _slug_of(path: Path) -> str | None:
    try:
        info = path.stat()
    except OSError:
        return split_filename(path)[1]
    return _cached_slug(path, info.st_mtime_ns, info.st_size)


@functools.lru_cache(maxsize=4096)
def _cached_slug(path: Path, mtime_ns: int, size: int) -> str | None:
    """A file's slug, parsed once per version of the file: every lookup checks them all."""
    try:
        return parse_issue(path).slug
    except IssueError:
        return split_filename(path)[1]


def new_issue(issues_dir: Path, title: str, today: dt.date | None = None, slug: str | None = None) -> Path:
    """Create issues/<today>-<slug>.md with its front matter filled in; refuse a slug in use.

    The slug is made from the title unless given. The file is created whole or not at all, and
    never over another: two `new`s racing for one name cannot both succeed.
    """
    import json

    if not title.strip() or "\n" in title or "\r" in title:
        raise IssueError("the title must be one non-empty line")
    try:
        title.encode("utf-8")
    except UnicodeEncodeError:
        raise IssueError("the title is not UTF-8 text (it has a byte that is not a character)") from None
    today = today or dt.date.today()
    slug = slug if slug is not None else slugify(title)
    problem = slug_problem(slug)
    if problem:
        raise IssueError(problem)
    path = issues_dir / f"{today.isoformat()}-{slug}.md"
    hint = "give it another slug with --slug, or edit that file"
    other = slug_owner(issues_dir, slug)
    if other is not None:
        raise IssueError(f"{path}: already exists" if other == path else
                         f"{path}: slug {slug!r} is already the slug of {other}", hint=hint)
    quoted = json.dumps(title.strip(), ensure_ascii=False)  # a JSON string is a valid YAML scalar
    text = (
        f"---\ntitle: {quoted}\nsubtitle: \"\"\ndate: {today.isoformat()}\nslug: {slug}\n"
        "# preheader: inbox preview text (default: the subtitle)\n"
        "# subject: the email subject (default: the title)\nstatus: draft\n---\n\nTK: write here.\n"
    )
    sweep_temps(issues_dir)  # what a killed `new` left
    try:
        create_exclusive(path, text.encode("utf-8"))
    except FileExistsError:
        raise IssueError(f"{path}: already exists", hint=hint) from None
    return path


def set_status(issue: Issue, status: str) -> None:
    """Rewrite the issue's front matter `status:` line atomically, keeping everything else."""
    if status not in ISSUE_STATUSES:
        raise IssueError(f"status must be one of {', '.join(ISSUE_STATUSES)}")
    text = issue.path.read_text(encoding="utf-8-sig")
    yaml_text, body, _ = split_front_matter(issue.path, text)
    lines = yaml_text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if re.match(r"^status\s*:", line):
            lines[i] = f"status: {status}\n"
            break
    else:
        lines.append(f"status: {status}\n")
    atomic_write_text(issue.path, "---\n" + "".join(lines) + "---\n" + body)
