"""The layout is the architecture: the import graph of `etl` has no cycle, the CLI is a leaf, and the stages
import only to their left (docs/architecture.md). Read from the source with `ast`, deferred imports included,
so a cycle hidden inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import etl

PACKAGE_DIR = Path(etl.__file__).parent
# The stages in the order data flows through them; a stage may import those before it, never after.
FLOW = ["etl.sources", "etl.catalog", "etl.taxonomy", "etl.splits", "etl.exclusions", "etl.provenance", "etl.plan",
        "etl.write", "etl.verify", "etl.export", "etl.report"]
# The one allowed step to the right: a new plan queues its shards, and the shard queue is the only owner of the
# `shards` table (the queue itself knows plans only through a protocol, so there is no cycle).
ALLOWED = {("etl.plan", "etl.write.queue")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the etl modules it imports (anywhere in its body)."""
    modules = {module_name(p): p for p in PACKAGE_DIR.rglob("*.py") if "migrations" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parents, base]).strip(".")
                imported.add(base)
                imported.update(f"{base}.{alias.name}" for alias in node.names)
        graph[name] = {target for target in imported if target in modules and target != name}
    return graph


def stage_of(module: str) -> str | None:
    return next((stage for stage in FLOW if module == stage or module.startswith(stage + ".")), None)


def test_no_import_cycle():
    graph = import_graph()
    state: dict[str, str] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append([*path[path.index(target):], target] if target in path else [node, target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    # A package and its own submodules (re-exports) are one room, not a cycle between rooms.
    between_rooms = [c for c in cycles if len({stage_of(m) or m.split(".")[1] for m in c}) > 1]
    assert between_rooms == []


def test_cli_is_a_leaf_and_commands_belong_to_it():
    graph = import_graph()
    assert [m for m, targets in graph.items() if "etl.cli" in targets] == []
    users = {m for m, targets in graph.items() if any(t == "etl.commands" or t.startswith("etl.commands.")
                                                       for t in targets)}
    assert all(m == "etl.cli" or m.startswith("etl.commands") for m in users), users


def test_stages_import_only_to_their_left():
    graph = import_graph()
    backwards = []
    for module, targets in graph.items():
        here = stage_of(module)
        if here is None:
            continue
        for target in targets:
            there = stage_of(target)
            if there is not None and FLOW.index(there) > FLOW.index(here) and (module, target) not in ALLOWED:
                backwards.append(f"{module} → {target}")
    assert backwards == []
