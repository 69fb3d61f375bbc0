"""With [readers] url, every archive page carries a plain HTML form that subscribes through the service."""

from __future__ import annotations

from pathlib import Path

from lxml import html as lxml_html

from newsletter.archive.site import build_site
from newsletter.config import load_settings


def pages(folder: Path, **values: object) -> dict[str, lxml_html.HtmlElement]:
    settings = load_settings(folder / "newsletter.toml", values, environ={})
    site = build_site(settings)
    assert not [w for w in site.warnings if "subscribe" in w]
    return {name: lxml_html.document_fromstring(data) for name, data in site.files.items()
            if name.endswith("index.html")}


def test_every_page_has_the_form_posting_to_the_service(newsletter_dir: Path) -> None:
    found = pages(newsletter_dir)
    assert "index.html" in found and len(found) >= 2
    for name, doc in found.items():
        forms = doc.xpath("//form")
        assert len(forms) == 1, name
        form = forms[0]
        assert form.get("method") == "post"
        assert form.get("action") == "https://haileyscomet.example.com/r/subscribe"
        fields = {i.get("name"): i for i in form.iter("input")}
        assert set(fields) == {"email", "name", "website"}
        assert fields["email"].get("type") == "email" and fields["email"].get("required") is not None
        assert fields["name"].get("required") is None
        for field in fields.values():  # every input has its label
            assert doc.xpath(f"//label[@for='{field.get('id')}']"), (name, field.get("id"))
        # The honeypot: hidden from people (off screen) and from screen readers, out of the tab order.
        trap = fields["website"]
        assert trap.get("tabindex") == "-1" and trap.get("autocomplete") == "off"
        assert trap.getparent().get("aria-hidden") == "true" and "hp" in trap.getparent().get("class")
        assert form.xpath(".//button[@type='submit']")
        assert not doc.xpath("//script")
        assert not doc.xpath("//a[starts-with(@href, 'mailto:subscribe@')]")  # the form replaces the address


def test_ids_are_unique_on_a_page(newsletter_dir: Path) -> None:
    for name, doc in pages(newsletter_dir).items():
        ids = [e.get("id") for e in doc.xpath("//*[@id]")]
        assert len(ids) == len(set(ids)), name


def test_without_the_service_the_address_and_link_stay(newsletter_dir: Path) -> None:
    found = pages(newsletter_dir, **{"readers.url": "", "newsletter.subscribe_url": "https://forms.example.net/x"})
    for doc in found.values():
        assert not doc.xpath("//form")
        hrefs = {a.get("href") for a in doc.xpath("//section[@class='subscribe']//a")}
        assert "https://forms.example.net/x" in hrefs
        assert any(h.startswith("mailto:subscribe@haileyscomet.example.com") for h in hrefs)


def test_the_confirmation_sentence_follows_double_opt_in(newsletter_dir: Path) -> None:
    on = pages(newsletter_dir)["index.html"].text_content()
    off = pages(newsletter_dir, **{"readers.double_opt_in": False})["index.html"].text_content()
    assert "We will email you a link to confirm." in on and "link to confirm" not in off
