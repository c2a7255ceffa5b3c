"""The package's shape (issue 10): no import cycle among src/rnnlab's modules (read with ast, so
deferred imports inside functions count too), and no module much over 450 lines."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "rnnlab"
MAX_LINES = 460  # DESIGN.md: "a module does one thing and stays under about 450 lines"


def modules() -> dict[str, Path]:
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        rel = f.relative_to(SRC).with_suffix("")
        out[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = f
    return out


def _targets(mods: dict, current: str, node) -> set[str]:
    """The modules of the package that an import statement in module ``current`` names."""
    is_pkg = mods[current].name == "__init__.py"
    if isinstance(node, ast.ImportFrom):
        base = current.split(".") if is_pkg else current.split(".")[:-1]
        if node.level:
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        names = [target] + [f"{target}.{a.name}" for a in node.names]
    else:
        names = [a.name for a in node.names]
    return {n for n in names if n in mods}


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere (top level or inside functions). A package's
    __init__ that its own submodule imports (``from .. import RnnlabError``) is not counted as a
    dependency of that submodule on its children."""
    mods = modules()
    graph = {}
    for m, f in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= _targets(mods, m, node)
        deps.discard(m)
        graph[m] = {d for d in deps if not (mods[d].name == "__init__.py" and m.startswith(d + "."))}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle found by depth-first search from each module (as lists of modules)."""
    cycles, seen = [], set()

    def dfs(node, path, on_path):
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_path:
                cyc = path[path.index(nxt):] + [nxt]
                key = frozenset(cyc)
                if key not in seen:
                    seen.add(key)
                    cycles.append(cyc)
            elif len(path) < 12:
                dfs(nxt, path + [nxt], on_path | {nxt})

    for start in sorted(graph):
        dfs(start, [start], {start})
    return cycles


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 40 and "rnnlab.train" in graph and "rnnlab.data.registry" in graph["rnnlab.train"]
    cycles = find_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_over_the_size_limit():
    sizes = {m: len(f.read_text().splitlines()) for m, f in modules().items()}
    big = {m: n for m, n in sizes.items() if n > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"
