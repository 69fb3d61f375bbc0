"""Markdown -> safe HTML fragment, and its plain-text twin."""

from __future__ import annotations

from lxml import html as lxml_html

from newsletter.render.essay import render_essay
from newsletter.render.text import essay_to_text

BASE = "https://example.com/comet/"
PAGE = "https://example.com/comet/issue/"


def frag(md: str, **kw: bool) -> str:
    return render_essay(md, BASE, PAGE, **kw).html


def test_raw_html_cannot_carry_script_iframe_forms_handlers_or_javascript_urls() -> None:
    md = (
        "Hello <script>alert(1)</script> world\n\n"
        '<iframe src="https://evil.example/"></iframe>\n\n'
        '<form action="https://evil.example/"><input name="x"><button>Go</button></form>\n\n'
        '<p onclick="steal()" onmouseover="x()">para</p>\n\n'
        '[bad](javascript:alert(1)) and <a href="JaVaScRiPt:alert(2)">raw</a>\n\n'
        '<img src="x.png" alt="x" onerror="alert(3)">\n'
    )
    essay = render_essay(md, BASE, PAGE)
    low = essay.html.lower()
    for bad in ("<script", "alert(1)", "<iframe", "<form", "<input", "<button", "onclick", "onmouseover",
                "onerror", "javascript:"):
        assert bad not in low, bad
    assert "para" in essay.html and "Hello" in essay.html
    assert essay.problems  # the checks report what was removed


def test_relative_links_and_images_resolve_against_the_newsletter_url() -> None:
    html = frag("[older](../2025-old/) and [about](/about/) ![A comet](img/comet.png)")
    doc = lxml_html.fragment_fromstring(html, create_parent="div")
    hrefs = [a.get("href") for a in doc.iter("a")]
    assert hrefs == ["https://example.com/2025-old/", "https://example.com/about/"]
    assert doc.find(".//img").get("src") == "https://example.com/comet/img/comet.png"


def test_images_get_an_integer_width_within_the_column() -> None:
    essay = render_essay(
        '![a](a.png){width="300px"} ![b](b.png) ![c](c.png){width="50%"} ![d](d.png){width=2000}',
        BASE, PAGE,
    )
    doc = lxml_html.fragment_fromstring(essay.html, create_parent="div")
    assert [img.get("width") for img in doc.iter("img")] == ["300", "600", "300", "600"]
    assert [i[2] for i in essay.images] == ["300px", "", "50%", "2000"]


def test_smart_typography_keeps_existing_curly_quotes_and_dashes() -> None:
    html = frag("Tarkovsky’s “Zone” — and 'straight' \"ones\" -- too...")
    assert "Tarkovsky’s “Zone” —" in lxml_html.fromstring(html).text_content()
    text = lxml_html.fromstring(html).text_content()
    assert "‘straight’" in text and "“ones”" in text and "–" in text and "…" in text


def test_essayist_extensions() -> None:
    md = (
        "## A heading\n\nText[^1].\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "```python\nprint('x')\n```\n\nStyled\n{: .lead }\n\n[^1]: The note.\n"
    )
    email = frag(md)
    assert 'id="a-heading"' in email and "<table>" in email and "<pre><code" in email
    assert 'class="lead"' in email and 'class="footnote"' in email
    assert f'href="{PAGE}#fn:1"' in email  # in-page links go to the web copy in an email
    assert "footnote-backref" not in email
    web = frag(md, for_email=False)
    assert 'href="#fn:1"' in web and "footnote-backref" in web


def test_pull_quote_marker_makes_a_styled_pull_quote() -> None:
    html = frag("> [!pullquote]\n> “A line worth repeating.”\n\nText.\n\n> An ordinary quote.")
    doc = lxml_html.fragment_fromstring(html, create_parent="div")
    quotes = doc.findall(".//blockquote")
    assert quotes[0].get("class") == "pullquote"
    assert quotes[0].text_content().strip() == "“A line worth repeating.”"
    assert quotes[1].get("class") is None


def test_plain_text_numbers_links_sets_off_quotes_and_wraps() -> None:
    md = (
        "Read [the novel](https://example.org/roadside-picnic) and [its film](https://example.org/stalker), "
        "then [the novel](https://example.org/roadside-picnic) again. " + "word " * 40 + "\n\n"
        "> [!pullquote]\n> “Quoted words that matter.”\n\n## Notes here\n\n- one\n- two\n\nA note[^1].\n\n"
        "[^1]: Footnote text.\n"
    )
    text, links = essay_to_text(render_essay(md, BASE, PAGE).html)
    assert "the novel [1]" in text and "its film [2]" in text and text.count("[1]") == 2
    assert links == ["https://example.org/roadside-picnic", "https://example.org/stalker"]
    assert "\n    “Quoted words that matter.”\n" in text
    assert "Notes here\n==========" in text and "- one\n- two" in text
    assert "A note¹." in text and "¹ Footnote text." in text
    assert max(len(line) for line in text.splitlines()) <= 78
