"""The seed issue's email, parsed and checked property by property."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import html as lxml_html

from newsletter.config import load_settings
from newsletter.issues import find_issue
from newsletter.models import RenderedEmail
from newsletter.render.compose import render_issue
from newsletter.render.message import personalize, sample_recipient

ROOT = Path(__file__).resolve().parents[2]
SLUG = "the-fear-of-entering-the-room"


@pytest.fixture(scope="module")
def rendered() -> RenderedEmail:
    settings = load_settings(ROOT / "newsletter.toml", environ={})
    return render_issue(find_issue(settings.issues_dir, SLUG), settings)


@pytest.fixture(scope="module")
def sent_html(rendered: RenderedEmail) -> str:
    settings = load_settings(ROOT / "newsletter.toml", environ={})
    return personalize(rendered, sample_recipient(settings, secret="s"))[0]


@pytest.fixture(scope="module")
def doc(sent_html: str) -> lxml_html.HtmlElement:
    return lxml_html.document_fromstring(sent_html)


def styles(el: lxml_html.HtmlElement) -> dict[str, str]:
    out = {}
    for decl in (el.get("style") or "").split(";"):
        if ":" in decl:
            k, v = decl.split(":", 1)
            out[k.strip().lower()] = v.strip()
    return out


def media_blocks(doc: lxml_html.HtmlElement) -> dict[str, str]:
    """@media condition -> the block's body, from the <style> elements."""
    css = "".join(s.text or "" for s in doc.xpath("//style"))
    blocks = {}
    for match in re.finditer(r"@media([^{]+)\{((?:[^{}]*\{[^{}]*\})*)\s*\}", css):
        blocks[match.group(1).strip()] = match.group(2)
    return blocks


def test_head_has_every_meta_an_email_needs(sent_html: str, doc: lxml_html.HtmlElement) -> None:
    assert sent_html.startswith("<!DOCTYPE html>")
    root = doc.getroottree().getroot()
    assert root.get("lang") == "en" and root.get("dir") == "ltr"
    metas = {m.get("name") or m.get("http-equiv") or "charset": m.get("content") or m.get("charset")
             for m in doc.xpath("//head/meta")}
    assert metas["charset"].lower() == "utf-8"
    assert "width=device-width" in metas["viewport"]
    assert "x-apple-disable-message-reformatting" in metas
    assert metas["color-scheme"] == "light dark"
    assert metas["supported-color-schemes"] == "light dark"
    assert doc.findtext(".//title") == "The Fear of Entering the Room"


def test_article_wrapper_and_outlook_scaffolding(sent_html: str, doc: lxml_html.HtmlElement) -> None:
    wrapper = doc.xpath("//div[@role='article']")
    assert len(wrapper) == 1
    w = wrapper[0]
    assert w.get("aria-roledescription") == "email"
    assert w.get("aria-label") == "The Fear of Entering the Room"
    assert w.get("lang") == "en" and w.get("dir") == "ltr"
    assert re.search(r"<!--\[if mso\]><table role=\"presentation\"[^>]*width=\"600\"", sent_html)
    assert "<o:PixelsPerInch>96</o:PixelsPerInch>" in sent_html
    assert re.search(r"<!--\[if mso\]>.*font-family: Georgia[^}]*!important", sent_html, re.DOTALL)
    assert "max-width:600px" in styles(doc.xpath("//div[contains(@class,'container')]")[0])["max-width"] \
        or styles(doc.xpath("//div[contains(@class,'container')]")[0])["max-width"] == "600px"
    tables = doc.xpath("//table")
    assert tables and all(t.get("role") == "presentation" for t in tables if "essay" not in
                          (t.getparent().get("class") or ""))


def test_preheader_is_hidden_and_padded_never_white_text(sent_html: str, doc: lxml_html.HtmlElement) -> None:
    pre = doc.xpath("//div[contains(@class,'preheader')]")[0]
    st = styles(pre)
    assert st["display"] == "none" and pre.get("aria-hidden") == "true"
    assert pre.text_content().startswith("On Tarkovsky’s Stalker and the courage to face our own desire.")
    assert "&#847;&zwnj;&nbsp;" * 10 in sent_html
    assert st.get("color", "").lower() not in ("#fff", "#ffffff", "white")


def test_content_masthead_title_byline_and_pull_quotes(doc: lxml_html.HtmlElement) -> None:
    assert "Hailey’s Comet" in doc.xpath("//td[contains(@class,'masthead')]")[0].text_content()
    h1 = doc.xpath("//h1")
    assert len(h1) == 1 and h1[0].text_content() == "The Fear of Entering the Room"
    assert doc.xpath("//p[contains(@class,'subtitle')]")[0].text_content() == \
        "On Tarkovsky’s Stalker and the courage to face our own desire."
    byline = doc.xpath("//p[contains(@class,'byline')]")[0].text_content()
    assert "Hailey Tai" in byline and "23 November 2026" in byline
    quotes = doc.xpath("//blockquote[contains(@class,'pullquote')]")
    assert len(quotes) == 3
    assert quotes[0].text_content().strip().startswith("“Tarkovsky shoots it")
    assert doc.xpath("//h2")[0].text_content() == "Background Note"


def test_footer_has_description_links_and_postal_address(doc: lxml_html.HtmlElement) -> None:
    footer = doc.xpath("//td[contains(@class,'footer')]")[0]
    text = footer.text_content()
    assert "is where I write about what moves us" in text
    assert "18 Orbit Lane" in text
    hrefs = {a.text_content(): a.get("href") for a in footer.iter("a")}
    assert hrefs["View in browser"] == f"https://haileyscomet.example.com/{SLUG}/"
    assert hrefs["Unsubscribe"].startswith("https://haileyscomet.example.com/r/unsubscribe/")  # [readers] url
    assert "reader@example.com" in text


def test_essay_text_is_readable(doc: lxml_html.HtmlElement) -> None:
    for p in doc.xpath("//div[contains(@class,'essay')]//p[not(ancestor::blockquote)]"):
        st = styles(p)
        assert int(st["font-size"].removesuffix("px")) >= 16
        assert 1.4 <= float(st["line-height"]) <= 1.7
    content = styles(doc.xpath("//td[contains(@class,'content')]")[0])
    assert "Georgia" in content["font-family"] and content["font-family"].endswith("serif")


def _luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    channels = [int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_light_colours_have_contrast_of_at_least_4_5(doc: lxml_html.HtmlElement) -> None:
    checked = 0
    for el in doc.iter():
        colour = styles(el).get("color") if isinstance(el.tag, str) else None
        if not colour or not el.text_content().strip() or "preheader" in (el.get("class") or ""):
            continue
        bg, node = None, el
        while node is not None and bg is None:
            bg = styles(node).get("background-color")
            node = node.getparent()
        assert bg, f"no background behind {el.tag}.{el.get('class')}"
        assert contrast(colour, bg) >= 4.5, f"{el.tag}.{el.get('class')}: {colour} on {bg}"
        checked += 1
    assert checked > 20


def test_dark_mode_overrides_every_inline_colour_with_important(doc: lxml_html.HtmlElement) -> None:
    dark = media_blocks(doc)["(prefers-color-scheme: dark)"]
    rules = re.findall(r"([^{}]+)\{([^{}]*)\}", dark)
    declarations = [d.strip() for _, body in rules for d in body.split(";") if d.strip()]
    assert declarations and all(d.endswith("!important") for d in declarations)
    covered: dict[str, set[str]] = {}
    for selectors, body in rules:
        kinds = {_kind(d.split(":")[0]) for d in body.split(";") if ":" in d}
        for sel in selectors.split(","):
            covered.setdefault(sel.strip().split()[-1], set()).update(kinds)
    for el in doc.iter():
        if not isinstance(el.tag, str) or "preheader" in (el.get("class") or ""):
            continue
        needed = {_kind(k) for k in styles(el) if _kind(k)}
        if not needed:
            continue
        keys = {f".{c}" for c in (el.get("class") or "").split()} | {el.tag}
        have = set().union(*(covered.get(k, set()) for k in keys))
        assert needed <= have, f"{el.tag}.{el.get('class')} has {needed - have} with no dark override"


def _kind(prop: str) -> str:
    prop = prop.strip()
    if prop == "color":
        return "color"
    if prop.startswith("background"):
        return "background"
    if prop.startswith("border") and prop not in ("border-collapse", "border-radius"):
        return "border"
    return ""


def test_style_block_holds_only_flat_media_rules_under_16kb(doc: lxml_html.HtmlElement) -> None:
    style_els = doc.xpath("//style")
    assert all(s.getparent().tag == "head" for s in style_els)
    css = "".join(s.text or "" for s in style_els)
    assert len(css.encode()) < 16 * 1024
    outside = re.sub(r"@media[^{]+\{(?:[^{}]*\{[^{}]*\})*\s*\}", "", css)
    assert outside.strip() == ""
    for body in media_blocks(doc).values():
        assert "@" not in body
    assert "&quot;" not in css and "&#39;" not in css


def test_inline_css_has_no_escaped_quotes_and_no_unsafe_content(sent_html: str, doc: lxml_html.HtmlElement) -> None:
    assert not re.search(r'style="[^"]*(&quot;|&#39;|&#34;)', sent_html)
    assert not doc.xpath("//script|//iframe|//form|//object|//embed")
    assert not [a for el in doc.iter() if isinstance(el.tag, str) for a in el.attrib if a.startswith("on")]


def test_all_links_absolute_and_size_small(rendered: RenderedEmail, sent_html: str,
                                          doc: lxml_html.HtmlElement) -> None:
    for el in doc.xpath("//a[@href]|//img[@src]"):
        url = el.get("href") or el.get("src")
        assert url.startswith(("https://", "mailto:")), url
    assert len(sent_html.encode()) < 40 * 1024
    assert "%%" not in sent_html and "{{" not in sent_html
    assert "%%UNSUBSCRIBE_URL%%" in rendered.html  # filled per recipient, never at render time
