"""The house: the import graph of the package has no cycle, and a preview can never send.

The graph is read from the source with `ast`, so it counts every import: at the top of a module,
inside a function and under TYPE_CHECKING. `from newsletter.x import y` is an import of the module
newsletter.x.y when y is a module, else of newsletter.x; importing newsletter.a.b from outside the
package newsletter.a also runs its face, newsletter/a/__init__.py.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "newsletter"
NEVER_FROM_PREVIEW = ("newsletter.send", "newsletter.providers")  # a preview can never send


def module_names() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its face's name)."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The modules of ours that importing `name` imports directly (faces included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            if target in modules:
                yield target
                yield from faces_run_by(name, target)


def faces_run_by(importer: str, target: str) -> Iterator[str]:
    """The package faces Python runs on the way to `target`, except those the importer lives in."""
    parts = target.split(".")
    for end in range(2, len(parts)):
        face = ".".join(parts[:end])
        if not (importer == face or importer.startswith(face + ".")):
            yield face


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: set(imports_of(name, path, modules)) - {name} for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected part of the graph that has one (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    parts: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = set()
            while not part or node not in part:
                part.add(stack.pop())
            if len(part) > 1:
                parts.append(part)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [cycle_in(graph, part) for part in parts]


def cycle_in(graph: dict[str, set[str]], part: set[str]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected part."""
    start = min(part)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph[node] & part):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    raise AssertionError(f"no cycle through {start}")


def reachable(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Every module importing `start` imports, each with the module that imports it first."""
    seen = {start: ""}
    todo = [start]
    while todo:
        node = todo.pop()
        for nxt in sorted(graph[node]):
            if nxt not in seen:
                seen[nxt] = node
                todo.append(nxt)
    return seen


def test_the_graph_sees_imports_inside_functions_and_faces() -> None:
    graph = import_graph()
    assert "newsletter.cli.app" in graph["newsletter.cli.issues"]
    assert "newsletter.issues" in graph["newsletter.cli.issues"]  # inside a function
    assert "newsletter.archive.site" in graph["newsletter.archive"]  # under TYPE_CHECKING
    assert "newsletter.archive" in graph["newsletter.cli.archive"]  # its face runs first
    assert "newsletter.files" in graph["newsletter.output"]  # `from newsletter import files`


def test_no_import_cycles() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_a_preview_never_imports_send_or_a_provider() -> None:
    graph = import_graph()
    bad = []
    for start in (name for name in graph if name.startswith("newsletter.preview")):
        seen = reachable(graph, start)
        for name in seen:
            if name.startswith(NEVER_FROM_PREVIEW):
                chain = [name]
                while seen[chain[-1]]:
                    chain.append(seen[chain[-1]])
                bad.append(" -> ".join(reversed(chain)))
    assert not bad, "the preview reaches:\n" + "\n".join(bad)


def test_a_face_is_imported_by_none_of_its_own_modules() -> None:
    graph = import_graph()
    faces = {name for name, path in module_names().items() if path.name == "__init__.py"} - {"newsletter"}
    bad = [f"{name} -> {face}" for name, targets in graph.items() for face in targets & faces
           if name.startswith(face + ".")]
    assert not bad, "\n".join(bad)


def test_no_private_name_is_imported_across_modules() -> None:
    bad = []
    for path in sorted([*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("newsletter"):
                bad += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, "\n".join(bad)


def test_every_name_a_face_offers_is_there() -> None:
    faces = [name for name, path in module_names().items() if path.name == "__init__.py" and name.count(".") == 1]
    for face in faces:
        module = importlib.import_module(face)
        missing = [name for name in getattr(module, "__all__", ()) if not hasattr(module, name)]
        assert not missing, f"{face} offers {missing}, which are not there"
