"""Issue + Settings -> RenderedEmail: Markdown -> Jinja2 -> CSS inlining -> text part.

Pure apart from reading templates. The result still holds per-recipient placeholders
(PLACEHOLDERS); newsletter.render.message fills them for each recipient, so an issue is rendered
and inlined once per send, never once per person.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from urllib.parse import urljoin

import jinja2
from markupsafe import Markup

from newsletter.config import Settings
from newsletter.errors import RenderError
from newsletter.models import Issue, RenderedEmail
from newsletter.render.essay import render_essay, smarten
from newsletter.render.fields import PLACEHOLDERS, TEXT_PLACEHOLDERS, essay_html_tokens, essay_text_tokens
from newsletter.render.text import essay_to_text, link_list, wrap

PACKAGE_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
# Invisible characters after the preheader keep clients from filling the preview with body text.
PREHEADER_SPACER = Markup("&#847;&zwnj;&nbsp;" * 60)


def base_url(settings: Settings) -> str:
    """[newsletter] url with exactly one trailing slash (so urljoin keeps a sub-path)."""
    return settings.newsletter.url.rstrip("/") + "/"


def web_url(settings: Settings, slug: str) -> str:
    """The issue's page in the web archive: {url}/{slug}/."""
    return urljoin(base_url(settings), f"{slug}/")


def template_env(settings: Settings) -> jinja2.Environment:
    """Templates from the newsletter's own templates/ first, then the packaged defaults.

    An override can replace a file whole, or `{% extends "default/email.html" %}` and change
    only a block (masthead, footer).
    """
    loaders: list[jinja2.BaseLoader] = []
    own = settings.root / "templates"
    if own.is_dir():
        loaders.append(jinja2.FileSystemLoader(own))
    packaged = jinja2.FileSystemLoader(PACKAGE_TEMPLATES)
    loaders.append(packaged)
    # "default/<name>" always reaches the packaged template, so an override can extend it.
    loaders.append(jinja2.PrefixLoader({"default": packaged}))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(["html", "htm", "xml"], default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def format_date(issue: Issue) -> str:
    return f"{issue.date.day} {issue.date:%B %Y}"


def typeset(issue: Issue) -> Issue:
    """The issue with its title, subtitle, subject and preheader set like the body (curly quotes, dashes)."""
    return replace(issue, title=smarten(issue.title), subtitle=smarten(issue.subtitle),
                   subject=smarten(issue.subject), preheader=smarten(issue.preheader))


def render_issue(issue: Issue, settings: Settings) -> RenderedEmail:
    """Render an issue into its HTML and plain-text parts, CSS inlined, placeholders left in."""
    issue = typeset(issue)
    page = web_url(settings, issue.slug)
    essay = render_essay(issue.body, base_url(settings), page, for_email=True)
    personal_html = essay_html_tokens(essay.html)  # {{ first_name }} etc. -> per-recipient placeholders
    env = template_env(settings)
    nl = settings.newsletter
    author = issue.author or nl.author
    context = {
        "lang": nl.language, "dir": nl.direction, "newsletter_name": nl.name, "description": nl.description,
        "postal_address": nl.postal_address, "home_url": base_url(settings), "web_url": page,
        "subject": issue.effective_subject, "preheader": issue.effective_preheader,
        "title": issue.title, "subtitle": issue.subtitle, "author": author, "date_text": format_date(issue),
        "date": issue.date, "slug": issue.slug,
    }
    html = render_template(env, "email.html", {
        **context, **PLACEHOLDERS, "essay": Markup(personal_html), "preheader_spacer": PREHEADER_SPACER,
        "css": Markup(template_source(env, "email.css")),
    })
    html = inline_css(html)
    essay_text, links = essay_to_text(personal_html)
    essay_text = essay_text_tokens(essay_text)
    byline = " · ".join(x for x in (f"By {author}" if author else "", format_date(issue)) if x)
    subtitle = "" if issue.subtitle == issue.effective_preheader else wrap(issue.subtitle)
    title_block = "\n".join(x for x in (wrap(issue.title), subtitle, byline) if x)
    text = render_template(env, "email.txt", {
        **context, **TEXT_PLACEHOLDERS, "preheader_text": wrap(issue.effective_preheader), "title_block": title_block,
        "essay_text": essay_text, "link_list": link_list(links),
        "signature": wrap(nl.description or nl.name),
    })
    return RenderedEmail(
        slug=issue.slug, subject=issue.effective_subject, preheader=issue.effective_preheader,
        html=html, text=_normalise_text(text), web_url=page,
        links=tuple(href for href, _ in essay.links),
        images=tuple(essay.images), problems=tuple(essay.problems),
        link_texts=tuple(text for _, text in essay.links), refs=tuple(essay.refs),
    )


def template_source(env: jinja2.Environment, name: str) -> str:
    """The text of a template as it is (a stylesheet to inline), from templates/ or the defaults."""
    assert env.loader is not None
    try:
        return env.loader.get_source(env, name)[0]
    except jinja2.TemplateNotFound:
        raise RenderError(f"template {name} not found in templates/ or the packaged defaults") from None


def render_template(env: jinja2.Environment, name: str, context: dict[str, object]) -> str:
    """Render a template; a template's own mistake becomes a RenderError naming the file."""
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"{exc.filename or name}:{exc.lineno}: template error: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"templates/{name}: {exc.message} (unresolved template field)") from None
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template {exc.name} not found in templates/ or the packaged defaults") from None


def _normalise_text(text: str) -> str:
    """Trim trailing spaces (but not the '-- ' signature marker) and collapse blank runs."""
    lines = [line if line == "-- " else line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line == "" and out and out[-1] == "":
            continue
        out.append(line)
    return "\n".join(out).strip("\n") + "\n"


def inline_css(html: str) -> str:
    """Inline the stylesheet with premailer, configured not to damage an email.

    No network; !important kept (dark-mode rules need it); width/height attributes left as the
    template wrote them; classes kept so the @media rules still apply; cssutils kept quiet.
    """
    from premailer import Premailer

    doctype = "<!DOCTYPE html>\n"
    inliner = Premailer(
        html, allow_network=False, allow_loading_external_files=False, strip_important=False,
        keep_style_tags=False, remove_classes=False, disable_validation=True,
        cssutils_logging_level=logging.CRITICAL, disable_basic_attributes=["width", "height"],
        disable_link_rewrites=True, align_floating_images=False, method="html",
    )
    out = inliner.transform()
    if out.lstrip().lower().startswith("<!doctype"):
        out = out.lstrip().split("\n", 1)[1] if "\n" in out.lstrip() else out
    out = out.replace("\u00a0", "&nbsp;").replace("\u200c", "&zwnj;").replace("\u034f", "&#847;")
    return doctype + out.lstrip()
