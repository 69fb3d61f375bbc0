"""Lazy package faces: a name is imported from its module the first time someone asks for it.

Each package's __init__.py lists which module gives which name and sets
`__getattr__ = lazy_names(__name__, homes)` (PEP 562), so importing one module of a package never
imports the others and `newsletter --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_names(package: str, homes: Mapping[str, tuple[str, ...]]) -> Callable[[str], Any]:
    """A module-level __getattr__ for `package` that imports each name from its module in `homes`."""
    where = {name: module for module, names in homes.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{module}"), name)

    return __getattr__
