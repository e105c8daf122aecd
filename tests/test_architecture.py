"""The layering obskit's code keeps (../shared/reference/architecture.md): facts at the
bottom, rendering pure and below every runtime, no import circles among the core."""

from __future__ import annotations

import ast
from pathlib import Path

OBSKIT = Path(__file__).resolve().parent.parent / "obskit"
CORE = ["obskit.components", "obskit.values", "obskit.alerting", "obskit.bindings", "obskit.secrets",
        "obskit.images", "obskit.render"]


def imports() -> dict[str, set[str]]:
    """Every obskit module each module imports, at the top or inside a function."""
    modules = {".".join(p.relative_to(OBSKIT.parent).with_suffix("").parts).replace(".__init__", ""): p
               for p in OBSKIT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("obskit"):
                deps |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                         for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("obskit")}
        graph[name] = {d for d in deps if d in modules and d != name and d != "obskit"}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for dep in graph.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_rendering_never_reaches_promote_or_a_runtime():
    below = reachable(imports(), "obskit.render")
    bad = sorted(m for m in below if m.startswith(("obskit.promote", "obskit.runtime", "obskit.stack")))
    assert not bad, f"render reaches {bad}"


def test_components_are_the_lowest_layer():
    graph = imports()
    assert reachable(graph, "obskit.components") == set()
    # values reads the spec, which may ask a tool chokepoint (tools/ and errors are the floor).
    floor = {m for m in graph if m.startswith(("obskit.tools", "obskit.errors", "obskit.spec"))}
    assert reachable(graph, "obskit.values") <= floor


def test_no_import_circle_among_the_core():
    graph = imports()
    for module in CORE:
        assert module not in reachable(graph, module), f"{module} imports itself through {sorted(graph[module])}"
