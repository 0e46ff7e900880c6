"""The import graph of `src/`, read from the code (every import, at module level or inside a
function), and the rules its layers keep. Used by tests/test_layers.py on the real tree and on
copies with deliberate violations, so the rules are shown to catch what they forbid."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

OURS = ("entities", "orchestrator", "worker")

# Each part of `orchestrator`, and the parts it may import (itself always). Read bottom-up:
# a part imports only parts listed before it, so no import runs back up.
ALLOWED: dict[str, frozenset[str]] = {
    "entities": frozenset(),
    "orchestrator.settings": frozenset(),
    "orchestrator.providers": frozenset(),
    "orchestrator.db": frozenset({"orchestrator.settings"}),
    "orchestrator.columnline": frozenset({"orchestrator.db"}),
    "orchestrator.state": frozenset({"entities", "orchestrator.db", "orchestrator.settings"}),
    "orchestrator.upload": frozenset({"entities", "orchestrator.db", "orchestrator.state"}),
    "orchestrator.engine": frozenset(
        {"entities", "orchestrator.db", "orchestrator.settings", "orchestrator.state"}
    ),
    "orchestrator.callbacks": frozenset(
        {"orchestrator.db", "orchestrator.engine", "orchestrator.state"}
    ),
    "orchestrator.steps": frozenset(
        {
            "entities",
            "orchestrator.callbacks",
            "orchestrator.db",
            "orchestrator.engine",
            "orchestrator.providers",
            "orchestrator.state",
        }
    ),
    "orchestrator.reports": frozenset(
        {"orchestrator.db", "orchestrator.engine", "orchestrator.state"}
    ),
    "orchestrator.web": frozenset(
        {
            "orchestrator.callbacks",
            "orchestrator.columnline",
            "orchestrator.db",
            "orchestrator.engine",
            "orchestrator.reports",
            "orchestrator.settings",
            "orchestrator.state",
            "orchestrator.upload",
        }
    ),
    "orchestrator.runtimes": frozenset(
        {
            "orchestrator.callbacks",
            "orchestrator.db",
            "orchestrator.engine",
            "orchestrator.providers",
            "orchestrator.settings",
            "orchestrator.state",
            "orchestrator.steps",
            "orchestrator.web",
        }
    ),
    "orchestrator.cli": frozenset(
        {
            "entities",
            "orchestrator.db",
            "orchestrator.engine",
            "orchestrator.reports",
            "orchestrator.runtimes",
            "orchestrator.settings",
            "orchestrator.state",
            "orchestrator.steps",
            "orchestrator.upload",
        }
    ),
    "worker": frozenset(
        {
            "orchestrator.engine",
            "orchestrator.runtimes",
            "orchestrator.settings",
            "orchestrator.web",
        }
    ),
}
SIMULATORS = "orchestrator.providers.simulators"


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (ours or not)
    line: int


def module_name(src: Path, path: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _absolute(node: ast.ImportFrom, source: str, is_package: bool) -> str | None:
    """The module an import names, relative imports resolved against the importing module."""
    if node.level == 0:
        return node.module
    package = source.split(".") if is_package else source.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])]) or None


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        root = _dotted(node.value)
        return f"{root}.{node.attr}" if root else None
    return None


def _longest_known(dotted: str, known: set[str]) -> str | None:
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in known:
            return ".".join(parts[:n])
    return None


def _targets(node: ast.AST, source: str, is_package: bool, known: set[str]) -> list[str]:
    """Every way a module can reach another: import statements (relative ones too), the
    `importlib.import_module` and `__import__` calls with a literal name, and attribute
    chains from a bare `import orchestrator` (`orchestrator.runtimes.local.X`)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        module = _absolute(node, source, is_package)
        if module is None:
            return []
        # `from package import module` imports the module; `from module import name` the module.
        return [
            f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names
        ]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        name, called = node.args[0].value, _dotted(node.func)
        if isinstance(name, str) and called in (
            "importlib.import_module",
            "import_module",
            "__import__",
        ):
            return [name]
    if isinstance(node, ast.Attribute) and not isinstance(
        getattr(node, "parent", None), ast.Attribute
    ):
        dotted = _dotted(node)
        if dotted and dotted.split(".")[0] in OURS:
            target = _longest_known(dotted, known)
            return [target] if target and target != dotted.split(".")[0] else []
    return []


def read_imports(src: Path) -> tuple[set[str], list[Import]]:
    paths = sorted(src.rglob("*.py"))
    files = {module_name(src, p): p for p in paths}
    packages = {module_name(src, p) for p in paths if p.name == "__init__.py"}
    known = set(files)
    imports = []
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for parent in ast.walk(tree):
            for child in ast.iter_child_nodes(parent):
                child.parent = parent  # type: ignore[attr-defined]
        imports += [
            Import(name, target, getattr(node, "lineno", 0))
            for node in ast.walk(tree)
            for target in _targets(node, name, name in packages, known)
        ]
    return known, imports


def part_of(module: str) -> str | None:
    """The layer a module of ours belongs to: the longest matching name in ALLOWED."""
    for candidate in sorted(ALLOWED, key=len, reverse=True):
        if module == candidate or module.startswith(candidate + "."):
            return candidate
    return None


def _ours(target: str) -> bool:
    return target.split(".")[0] in OURS


def layer_violations(imports: Iterable[Import]) -> list[str]:
    found = []
    for imp in imports:
        top = imp.target.split(".")[0]
        if top == "modal" and imp.source != "worker":
            found.append(f"{imp.source}:{imp.line} imports modal; only worker.py may")
        if not _ours(imp.target):
            continue
        if imp.target.startswith(SIMULATORS) and not (
            imp.source.startswith(SIMULATORS) or imp.source.startswith("orchestrator.runtimes")
        ):
            found.append(f"{imp.source}:{imp.line} imports {imp.target}; only runtimes may")
        source_part, target_part = part_of(imp.source), part_of(imp.target)
        if source_part is None or target_part is None or source_part == target_part:
            continue
        if target_part not in ALLOWED[source_part]:
            found.append(
                f"{imp.source}:{imp.line} imports {imp.target}:"
                f" {source_part} may not import {target_part}"
            )
    return found


def module_cycles(known: set[str], imports: Iterable[Import]) -> list[list[str]]:
    """Strongly connected groups of two or more of our modules (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {m: set() for m in known}
    for imp in imports:
        if imp.target in known and imp.target != imp.source:
            graph[imp.source].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles
