"""Issue 9, items 7-12 and 15: what `check` refuses, what it reports with file:line, the text part,
the title's typography and the sanitiser's treatment of style attributes."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.config import load_settings
from newsletter.issues import find_issue
from newsletter.render.checks import GMAIL_CLIP_BYTES, INIT_PLACEHOLDERS, KB, kb
from newsletter.render.essay import BLOCK_PROCESSORS, INLINE_PATTERNS, render_essay, smarten
from newsletter.render.imagesize import image_width
from newsletter.render.sample import build_issue, render_and_check
from newsletter.render.text import essay_to_text
from newsletter.scaffold import NEWSLETTER_TOML

ROOT = Path(__file__).resolve().parents[2]
IMAGES = Path(__file__).resolve().parents[1] / "fixtures" / "images"
HTML_VALIDATE = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "html-validate"
HTML_VALIDATE_CONFIG = Path(__file__).resolve().parents[1] / "fixtures" / "htmlvalidate-email.json"
SLUG = "the-fear-of-entering-the-room"
HEAD = "---\ntitle: {title}\ndate: 2026-12-01\nslug: tide-pools\nstatus: ready\n---\n"


def write_issue(folder: Path, body: str, title: str = "Tide pools are small oceans", slug: str = "tide-pools",
                status: str = "ready") -> Path:
    path = folder / "issues" / f"2026-12-01-{slug}.md"
    head = HEAD.format(title=json.dumps(title)).replace("tide-pools", slug).replace("ready", status)
    path.write_text(head + body, encoding="utf-8")
    return path


def check(runner: CliRunner, slug: str = "tide-pools") -> tuple[int, str]:
    result = runner.invoke(app, ["check", slug])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


# -- item 7: init's example values -------------------------------------------------------------

def init_config(folder: Path, runner: CliRunner, provider: str) -> None:
    assert runner.invoke(app, ["init", str(folder)]).exit_code == 0
    config = folder / "newsletter.toml"
    config.write_text(config.read_text().replace('provider = "outbox"', f'provider = "{provider}"'))
    write_issue(folder, "A first essay with nothing left to do.\n")


def test_init_placeholders_are_the_ones_init_writes() -> None:
    written = NEWSLETTER_TOML.format(name=INIT_PLACEHOLDERS["name"])
    for value in INIT_PLACEHOLDERS.values():
        assert value in written  # the name: init's --name default, checked by the outbox test below


@pytest.mark.parametrize("provider", ["smtp", "sendgrid"])
def test_check_refuses_init_placeholders_for_a_real_provider(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    folder = tmp_path / "letter"
    init_config(folder, runner, provider)
    monkeypatch.chdir(folder)
    code, out = check(runner)
    assert code == 1
    for key in ("[sender] from", "[newsletter] url", "[delivery] unsubscribe_mailto", "[newsletter] name"):
        line = next(line for line in out.splitlines() if key in line)
        assert line.lstrip().startswith("error") and "newsletter.toml" in line


def test_check_warns_about_init_placeholders_with_the_outbox(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "letter"
    init_config(folder, runner, "outbox")
    monkeypatch.chdir(folder)
    code, out = check(runner)
    lines = [line for line in out.splitlines() if "from `newsletter init`" in line]
    assert len(lines) == 4 and all(line.lstrip().startswith("warning") for line in lines)


def test_send_refuses_init_placeholders_for_smtp(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "letter"
    init_config(folder, runner, "smtp")
    (folder / "subscribers.csv").write_text("email,name\nada@example.org,Ada\n")
    monkeypatch.chdir(folder)
    result = runner.invoke(app, ["send", "tide-pools", "--yes"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "from `newsletter init`: set a real value before sending through smtp" in result.output
    assert "4 errors" in result.output


# -- item 8: relative images and links -----------------------------------------------------------

def test_missing_relative_image_is_an_error_with_its_line(newsletter_dir: Path, runner: CliRunner) -> None:
    write_issue(newsletter_dir, "First line.\n\nSecond.\n\n![A tide pool at dawn](images/tide-pol.png)\n")
    code, out = check(runner)
    assert code == 1
    line = next(line for line in out.splitlines() if "tide-pol.png" in line)
    assert line.lstrip().startswith("error") and "2026-12-01-tide-pools.md:11:" in line


def test_existing_image_passes_and_warns_once_until_the_archive_is_published(
    newsletter_dir: Path, runner: CliRunner
) -> None:
    (newsletter_dir / "issues" / "images").mkdir()
    for name in ("pool-320.png", "pool-321.jpg"):
        shutil.copy(IMAGES / name, newsletter_dir / "issues" / "images" / name)
    write_issue(newsletter_dir, "Text.\n\n![Pool](images/pool-320.png){width=300}\n\n"
                                "![Pool again](images/pool-321.jpg){width=300}\n")
    code, out = check(runner)
    assert code == 0, out
    unpublished = [line for line in out.splitlines() if "only after the archive is published" in line]
    assert len(unpublished) == 1 and "2026-12-01-tide-pools.md:9:" in unpublished[0]
    assert runner.invoke(app, ["archive"]).exit_code == 0
    code, out = check(runner)
    assert code == 0 and "only after the archive is published" not in out


def test_links_into_the_site_must_name_a_published_issue(newsletter_dir: Path, runner: CliRunner) -> None:
    write_issue(newsletter_dir, "Draft here.\n", title="Another one", slug="another-one", status="draft")
    write_issue(newsletter_dir, "See [the room](../the-fear-of-entering-the-room/) and [another](../another-one/)"
                                " and [nothing](../no-such-issue/).\n\nAnd [the feed](../feed.xml).\n")
    code, out = check(runner)
    assert code == 1
    errors = [line for line in out.splitlines() if line.lstrip().startswith("error")]
    assert any("another-one" in e and "draft" in e and "tide-pools.md:7:" in e for e in errors)
    assert any("no-such-issue" in e for e in errors)
    assert not any("fear-of-entering" in e or "feed.xml" in e for e in errors)


# -- item 9: code is text, fields are fine, other braces are errors ------------------------------

def test_placeholders_and_braces_in_code_are_text(newsletter_dir: Path, runner: CliRunner) -> None:
    body = ("Write `TODO` or `{{ page.title }}` in a template.\n\n```\n# TODO: {{ x }} TK\n```\n\n"
            "~~~jinja\n{% if x %}FIXME{% endif %}\n~~~\n\nDear {{ first_name | default(\"friend\") }}, "
            "{{ name }} at {{ email }}.\n")
    write_issue(newsletter_dir, body)
    code, out = check(runner)
    assert code == 0, out


@pytest.mark.parametrize("prose", ["We wait for TK.", "TODO: finish", "Hi {{ nickname }}!", "{% if x %}y{% endif %}"])
def test_placeholders_and_unknown_fields_in_prose_are_errors(
    newsletter_dir: Path, runner: CliRunner, prose: str
) -> None:
    write_issue(newsletter_dir, f"Fine.\n\n{prose}\n")
    code, out = check(runner)
    assert code == 1
    assert any("tide-pools.md:9:" in line for line in out.splitlines() if line.lstrip().startswith("error"))


# -- item 10: typography of the title, subtitle, subject and preheader --------------------------

def test_title_subject_and_preheader_get_smart_typography(newsletter_dir: Path) -> None:
    path = write_issue(newsletter_dir, "Body.\n", title="Stalker's \"Room\" -- and after...")
    subtitle = "subtitle: \"It's 'slow' --- on purpose\""
    path.write_text(path.read_text().replace("status: ready", "status: ready\n" + subtitle))
    settings = load_settings(newsletter_dir / "newsletter.toml", environ={})
    _, rendered, _ = render_and_check(settings, "tide-pools")
    assert rendered.subject == "Stalker’s “Room” – and after…"
    assert rendered.preheader == "It’s ‘slow’ — on purpose"
    assert "<title>Stalker’s “Room” – and after…</title>" in rendered.html
    assert "It’s ‘slow’ — on purpose" in rendered.text and "Stalker’s “Room”" in rendered.text


def test_smarten_leaves_markdown_syntax_alone() -> None:
    assert smarten("# *not* `code` [a](b) <b>x</b> & y") == "# *not* `code` [a](b) <b>x</b> & y"
    assert smarten("'90s") == "’90s"
    import markdown

    md = markdown.Markdown()
    assert {p.name for p in md.parser.blockprocessors._priority} - set(BLOCK_PROCESSORS) == {"paragraph"}  # type: ignore[attr-defined]
    assert {p.name for p in md.inlinePatterns._priority} <= set(INLINE_PATTERNS)  # type: ignore[attr-defined]


# -- item 11: real image widths, one way of counting size ----------------------------------------

@pytest.mark.parametrize("name,width", [("pool-320.png", 320), ("pool-321.jpg", 321), ("pool-322.webp", 322)])
def test_image_width_reads_real_files(name: str, width: int) -> None:
    assert image_width(IMAGES / name) == width


def test_image_width_reads_gif_and_webp_variants(tmp_path: Path) -> None:
    cases = {
        "a.gif": b"GIF89a" + struct.pack("<HH", 640, 10) + b"\x00" * 8,
        "lossy.webp": b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 7 + b"\x9d\x01\x2a" + struct.pack("<HH", 700, 5),
        "lossless.webp": b"RIFF\x00\x00\x00\x00WEBPVP8L\x00\x00\x00\x00\x2f" + struct.pack("<I", (701 - 1) | (4 << 14)),
        "text.png": b"not an image at all",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data + b"\x00" * 16)
    assert image_width(tmp_path / "a.gif") == 640
    assert image_width(tmp_path / "lossy.webp") == 700
    assert image_width(tmp_path / "lossless.webp") == 701
    assert image_width(tmp_path / "text.png") is None
    assert image_width(tmp_path / "missing.png") is None


def test_narrow_image_shown_wide_warns_with_real_width_and_line(newsletter_dir: Path, runner: CliRunner) -> None:
    (newsletter_dir / "issues" / "images").mkdir()
    shutil.copy(IMAGES / "pool-322.webp", newsletter_dir / "issues" / "images" / "pool.webp")
    write_issue(newsletter_dir, "Text.\n\n![A pool](images/pool.webp)\n")
    code, out = check(runner)
    line = next(line for line in out.splitlines() if "pool.webp is" in line)
    assert line.lstrip().startswith("warning") and "322 px wide but shown 600 px" in line
    assert "tide-pools.md:9:" in line and "{width=322}" in line


def test_html_size_is_the_part_as_sent_in_kb_of_1000_everywhere(newsletter_dir: Path, runner: CliRunner) -> None:
    settings = load_settings(newsletter_dir / "newsletter.toml", environ={})
    result = build_issue(settings, SLUG, newsletter_dir / "build")
    summary = result.report.size_summary
    assert KB == 1000 and GMAIL_CLIP_BYTES == 102_000 and kb(14_400) == "14.4 KB"
    assert summary.startswith(f"HTML part as sent is {kb(result.report.html_bytes)} of Gmail's 102 KB clip")
    out = runner.invoke(app, ["build", SLUG]).output
    assert summary in out and f"email.html  {kb(result.files['email.html'])}" in out
    out = runner.invoke(app, ["check", SLUG]).output
    assert summary in out
    from newsletter.preview.server import PreviewServer

    with PreviewServer(newsletter_dir / "newsletter.toml", port=0) as srv:
        page = srv.respond(f"/issue/{SLUG}/", "127.0.0.1").body
        assert isinstance(page, bytes) and f"<b>{kb(result.report.html_bytes)}</b>" in page.decode()


# -- item 12: the plain-text part ----------------------------------------------------------------

def test_list_items_with_inline_markup_stay_whole() -> None:
    md = ("- I use NOAA’s [Tides](https://tidesandcurrents.noaa.gov/) predictions;\n"
          "- a *short* walk with `code` in it\n- plain\n")
    text, links = essay_to_text(render_essay(md, "https://s/", "https://s/p/").html)
    assert text == "- I use NOAA’s Tides [1] predictions;\n- a short walk with code in it\n- plain"
    assert links == ["https://tidesandcurrents.noaa.gov/"]


def test_links_in_table_cells_keep_their_url() -> None:
    md = "| Where | Map |\n|---|---|\n| The pool | [map](https://maps.example.org/pool) |\n"
    text, links = essay_to_text(render_essay(md, "https://s/", "https://s/p/").html)
    assert "The pool | map [1]" in text and links == ["https://maps.example.org/pool"]


# -- item 15: style attributes, html-validate ----------------------------------------------------

HOSTILE_STYLES = [
    "width: expression(alert(1))",
    "background: url(javascript:alert(1))",
    "background:url(&#106;avascript:alert(1))",
    "background-image: url('vbscript:msgbox(1)')",
    "width: expr/**/ession(alert(1))",
    "width: expr\\65 ssion(alert(1))",
    "behavior: url(x.htc)",
    "-moz-binding: url(http://x/x.xml#x)",
    "background: url(data:text/html;base64,PHNjcmlwdD4=)",
]


@pytest.mark.parametrize("style", HOSTILE_STYLES)
def test_style_attributes_never_carry_script(newsletter_dir: Path, style: str) -> None:
    write_issue(newsletter_dir, f'<p style="color: #333; {style}">Hello</p>\n')
    settings = load_settings(newsletter_dir / "newsletter.toml", environ={})
    _, rendered, report = render_and_check(settings, "tide-pools")
    from newsletter.archive.site import build_site

    site = build_site(settings)
    essay = render_essay(find_issue(settings.issues_dir, "tide-pools").body, "https://example.com/", "").html
    outputs = [rendered.html, essay, site.files["tide-pools/index.html"].decode(),
               site.files["feed.xml"].decode()]
    for out in outputs:
        low = out.lower()
        assert "expression" not in low and "javascript" not in low and "vbscript" not in low
        assert "behavior" not in low and "binding" not in low and "data:text" not in low
    assert 'style="color: #333"' in essay
    assert any("unsafe style" in r.message for r in report.warnings)


def test_safe_style_survives() -> None:
    html = render_essay('<p style="text-align: center; background: url(https://x.example/a.png)">Hi</p>',
                        "https://s/", "https://s/p/").html
    assert 'style="text-align: center; background: url(https://x.example/a.png)"' in html


def _html_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HTML_VALIDATE), "--config", str(HTML_VALIDATE_CONFIG), str(path)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def html_validate() -> Path:
    """html-validate from .ci/node (npm install --prefix .ci/node html-validate@9.7.1); CI must have it."""
    if not HTML_VALIDATE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{HTML_VALIDATE} is missing: .ci/run installs it")
        pytest.skip("html-validate is not installed: npm install --prefix .ci/node html-validate@9.7.1")
    return HTML_VALIDATE


def test_email_passes_html_validate(newsletter_dir: Path, html_validate: Path) -> None:
    """The email's HTML is valid: html-validate's recommended rules, less four that email needs to break.

    Inline styles (Gmail drops <style> in some views), Outlook's conditional comments, the old
    presentational attributes (bgcolor, cellpadding) and role="article" instead of <article> are
    how an email is built; every other recommended rule holds.
    """
    body = ("Intro with [a link](https://example.org/).\n\n| A | B |\n|---|---|\n| 1 | [x](https://e.org/) |\n\n"
            "- one\n- two with `code`\n\n> [!pullquote]\n> Quoted.\n\nA note.[^1]\n\n[^1]: The note.\n\n"
            '```\ncode block\n```\n\n<p style="color: red; width: expression(1)">styled</p>\n')
    write_issue(newsletter_dir, body)
    settings = load_settings(newsletter_dir / "newsletter.toml", environ={})
    for slug in (SLUG, "tide-pools"):
        folder = build_issue(settings, slug, newsletter_dir / "build").folder
        result = _html_validate(folder / "email.html")
        assert result.returncode == 0, result.stdout + result.stderr
