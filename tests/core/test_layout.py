"""The core's layout holds: role subpackages that import only downward, no import cycles, small modules,
and every public name and README import still importable (old module paths with a deprecation warning)."""

from __future__ import annotations

import ast
import importlib
import re
import warnings

import pytest
from repo_paths import REPO_ROOT

import ragcun
from ragcun._moved import MOVED_MODULES

SRC = REPO_ROOT / "src" / "ragcun"
LAYERS = ("io", "index", "scoring", "stats", "model", "losses", "store", "retriever")
"""Subpackages (and the ``retriever`` module) from the bottom up: each may import only its own layer and those before it."""
MAX_LINES = 450


def _module_name(path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path, top_level_only: bool = False) -> set[str]:
    """The ``ragcun`` modules ``path`` imports (every import, or only those run when it loads)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("ragcun."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ragcun."))
    return found


def _layer(module: str) -> int | None:
    part = module.split(".")[1] if module.count(".") else None
    return LAYERS.index(part) if part in LAYERS else None


CORE = sorted(p for p in SRC.rglob("*.py") if p.parent != SRC or p.stem in LAYERS)


def test_subpackages_import_only_downward():
    upward = []
    for path in CORE:
        own = _layer(_module_name(path))
        assert own is not None, f"{path} sits in no layer of {LAYERS}"
        for target in _imports(path):
            layer = _layer(target)
            if layer is None or layer > own:
                upward.append(f"{_module_name(path)} imports {target}")
    assert not upward, "imports that go up the layers (or outside them):\n" + "\n".join(upward)


def test_no_import_cycles_between_modules():
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {name: {t for t in _imports(p, top_level_only=True) if t in modules and t != name}
             for name, p in modules.items()}
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path[path.index(nxt):], nxt]))
            if nxt not in seen:
                visit(nxt, [*path, nxt])
        seen[node] = 2

    for name in sorted(graph):
        if name not in seen:
            visit(name, [name])


def test_no_module_over_the_line_limit():
    roots = [REPO_ROOT / d for d in ("src", "integrations", "training")]
    long = {str(p.relative_to(REPO_ROOT)): n for root in roots for p in root.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_every_public_name_imports():
    for name in ragcun.__all__:
        assert getattr(ragcun, name) is not None, name


def test_every_python_import_the_readme_shows_works():
    code = "\n".join(re.findall(r"```python\n(.*?)```", (REPO_ROOT / "README.md").read_text(encoding="utf-8"), re.S))
    lines = [line.strip() for line in code.splitlines() if re.match(r"\s*(from \S+ )?import ", line)]
    assert lines, "the README shows no Python imports"
    for line in lines:
        exec(line, {})  # noqa: S102 - the README's own import lines


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_old_module_paths_warn_and_serve_the_new_module(old):
    new = importlib.import_module(MOVED_MODULES[old])
    import sys

    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is new
    assert any(issubclass(w.category, DeprecationWarning) and MOVED_MODULES[old] in str(w.message) for w in caught)
