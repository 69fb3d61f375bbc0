"""Golden files for the seed issue: what `newsletter build` writes, byte for byte.

Regenerate them only on purpose, after looking at the change:

    python -m tests.golden --update
"""

from __future__ import annotations

import sys
from pathlib import Path

from newsletter.config import load_settings
from newsletter.render.message import personalize, sample_recipient
from newsletter.render.sample import render_and_check

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
SLUG = "the-fear-of-entering-the-room"


def current() -> dict[str, str]:
    """The seed issue's email.html and email.txt as the code renders them now."""
    settings = load_settings(ROOT / "newsletter.toml", environ={})
    _, rendered, _ = render_and_check(settings, SLUG)
    html, text = personalize(rendered, sample_recipient(settings, secret=""))
    return {"email.html": html, "email.txt": text}


def main() -> None:
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python -m tests.golden --update")
    for name, content in current().items():
        path = GOLDEN / SLUG / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
