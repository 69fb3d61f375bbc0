"""The essay's HTML fragment (straight from the Markdown, before any template) -> plain text.

Links become numbered references ([1] and a list at the end), pull quotes are set off by
indentation, lines are wrapped at 76 columns, and footnote markers become superscript digits.
"""

from __future__ import annotations

import textwrap

from lxml import html as lxml_html
from lxml.html import HtmlElement

WIDTH = 76
_BLOCKS = {"p", "div", "blockquote", "ul", "ol", "li", "pre", "hr", "table", "h1", "h2", "h3", "h4",
           "h5", "h6", "figure", "figcaption", "dl", "dt", "dd", "details", "summary"}
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def wrap(text: str, indent: str = "", width: int = WIDTH) -> str:
    """Wrap one paragraph; URLs and long words are never broken."""
    return textwrap.fill(
        " ".join(text.split()), width=width, initial_indent=indent, subsequent_indent=indent,
        break_long_words=False, break_on_hyphens=False,
    )


class _TextWriter:
    def __init__(self) -> None:
        self.links: list[str] = []

    def inline(self, el: HtmlElement) -> str:
        """The text of an element's inline content, links replaced by references."""
        parts = [el.text or ""]
        for child in el:
            parts.append(self._inline_child(child))
            parts.append(child.tail or "")
        return "".join(parts)

    def _inline_child(self, child: HtmlElement) -> str:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag == "br":
            return "\n"
        if tag == "img":
            alt = child.get("alt", "").strip()
            return f"[Image: {alt}]" if alt else "[Image]"
        if tag == "sup" and child.find("a[@class='footnote-ref']") is not None:
            return child.text_content().strip().translate(_SUPERSCRIPT)
        if tag == "a" and "footnote-backref" in child.get("class", ""):
            return ""
        text = self.inline(child)
        if tag == "a":
            href = child.get("href", "")
            if href and not href.startswith("#") and href != text.strip():
                if href not in self.links:
                    self.links.append(href)
                return f"{text} [{self.links.index(href) + 1}]"
        return text

    def blocks(self, el: HtmlElement, indent: str = "") -> list[str]:
        """Render the children of el as a list of text blocks (separated by blank lines).

        Text and inline elements between two blocks make one paragraph together: a list item
        holding a link or `code` stays one item.
        """
        out: list[str] = []
        run = [el.text or ""]

        def flush() -> None:
            lines = [wrap(part, indent) for part in "".join(run).split("\n") if part.strip()]
            if lines:
                out.append("\n".join(lines))
            run.clear()

        for child in el:
            tag = child.tag if isinstance(child.tag, str) else ""
            if tag in _BLOCKS:
                flush()
                out.extend(self.block(child, tag, indent))
            elif tag:
                run.append(self._inline_child(child))
            run.append(child.tail or "")
        flush()
        return out

    def block(self, el: HtmlElement, tag: str, indent: str) -> list[str]:
        if tag in ("p", "dt", "dd", "summary", "figcaption"):
            lines = [wrap(part, indent) for part in self.inline(el).split("\n") if part.strip()]
            return ["\n".join(lines)] if lines else []
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            title = " ".join(self.inline(el).split())
            return [f"{indent}{title}\n{indent}{('=' if tag in ('h1', 'h2') else '-') * len(title)}"]
        if tag == "blockquote":
            if "pullquote" in el.get("class", ""):
                return self.blocks(el, indent + "    ")
            return [f"\n{indent}>\n".join(self.blocks(el, indent + "> "))]
        if tag in ("ul", "ol"):
            return [self._list(el, tag, indent)]
        if tag == "pre":
            return ["\n".join(indent + "    " + line for line in el.text_content().rstrip("\n").split("\n"))]
        if tag == "hr":
            return [indent + "* * *"]
        if tag == "table":
            rows = [" | ".join(" ".join(self.inline(c).split()) for c in tr if isinstance(c.tag, str))
                    for tr in el.iter("tr")]
            return ["\n".join(indent + r for r in rows)]
        if "footnote" in el.get("class", "").split():
            return [indent + "Notes\n" + indent + "-----", *self._footnotes(el, indent)]
        return self.blocks(el, indent)

    def _list(self, el: HtmlElement, tag: str, indent: str) -> str:
        items = []
        start = int(el.get("start", "1") or 1) if tag == "ol" else 1
        for n, li in enumerate((c for c in el if c.tag == "li"), start=start):
            marker = f"{n}. " if tag == "ol" else "- "
            body = "\n\n".join(self.blocks(li, indent + " " * len(marker)) or [""])
            items.append(indent + marker + body[len(indent) + len(marker):])
        return "\n".join(items)

    def _footnotes(self, el: HtmlElement, indent: str) -> list[str]:
        out = []
        for n, li in enumerate(el.iter("li"), start=1):
            text = " ".join(" ".join(b.split()) for b in self.blocks(li, ""))
            out.append(wrap(f"{str(n).translate(_SUPERSCRIPT)} {text}", indent))
        return out


def essay_to_text(fragment: str) -> tuple[str, list[str]]:
    """Convert the essay fragment to wrapped text; return (text, link URLs in reference order)."""
    writer = _TextWriter()
    root = lxml_html.fragment_fromstring(fragment or "<p></p>", create_parent="div")
    return "\n\n".join(b for b in writer.blocks(root) if b.strip()), writer.links


def link_list(links: list[str]) -> str:
    """The numbered reference list printed after the essay."""
    return "\n".join(f"[{n}] {url}" for n, url in enumerate(links, start=1))
