"""`pip install .` ships the default templates: the tool works outside the source tree."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_the_default_templates(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(ROOT)],
        check=True, capture_output=True,
    )
    wheel = next(tmp_path.glob("newsletter-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    packaged = {f"newsletter/templates/{p.name}" for p in (ROOT / "newsletter" / "templates").iterdir()
                if p.is_file()}
    assert {"newsletter/templates/email.html", "newsletter/templates/email.css",
            "newsletter/templates/email.txt"} <= packaged
    assert packaged <= names
    assets = {f"newsletter/preview/assets/{p.name}" for p in (ROOT / "newsletter" / "preview" / "assets").iterdir()}
    assert "newsletter/preview/assets/preview.js" in assets and assets <= names
    assert "newsletter/cli/__init__.py" in names and any(n.endswith("entry_points.txt") for n in names)
