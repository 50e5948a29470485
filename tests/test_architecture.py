"""The layers of README's "Architecture: where a change belongs", checked by walking every import of the package
(lazy ones included).

Imports point down only: a module may import modules of a lower layer, or of its own sub-package; there
is no import cycle between modules, and the library never imports recipes or scripts.
"""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "wavegrad"

# top-level room -> layer (lower layers never import higher ones)
LAYERS = {
    "errors": 0,
    "config": 1, "utils": 1,
    "diffusion": 2,
    "audio": 3, "models": 3,
    "data": 4, "checkpoint": 4, "trajectory": 4, "vocoder_inputs": 4,
    "bundle": 5, "long_form": 5,
    "vocoder": 6, "images": 6, "enhance": 6,
    "training": 7,
    "commands": 8, "benchmarks": 8,
    "cli": 9,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every wavegrad module that ``path`` imports, at module level or inside functions."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "wavegrad"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "wavegrad":
                continue
            found.add(target)
            for a in node.names:  # `from . import x` / `from .pkg import module`
                candidate = f"{target}.{a.name}"
                if (PKG.parent / candidate.replace(".", "/")).with_suffix(".py").exists() or \
                        (PKG.parent / candidate.replace(".", "/") / "__init__.py").exists():
                    found.add(candidate)
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PKG.rglob("*.py")}


def _room(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_every_room_has_a_layer():
    rooms = {_room(m) for m in _graph()} - {""}
    assert rooms <= set(LAYERS), f"rooms without a layer in this test and README's architecture section: {rooms - set(LAYERS)}"


def test_imports_point_down():
    bad = []
    for mod, targets in _graph().items():
        if mod == "wavegrad":            # the package root only re-exports lazily
            continue
        for t in targets:
            if t == "wavegrad" or _room(t) == _room(mod):
                continue
            if LAYERS[_room(t)] >= LAYERS[_room(mod)]:
                bad.append(f"{mod} -> {t}")
    assert not bad, "imports that point up or sideways:\n" + "\n".join(sorted(bad))


def test_no_import_cycles():
    graph = _graph()
    known = set(graph)

    def resolve(t: str) -> str | None:   # `wavegrad.audio.mel.MelConfig`-style names end at a module
        while t and t not in known:
            t = t.rsplit(".", 1)[0] if "." in t else ""
        return t or None

    edges = {m: {r for t in ts if (r := resolve(t)) and r != m and not m.startswith(r + ".")} for m, ts in graph.items()}
    # a package's __init__ importing its own modules is not a cycle of ideas; a module importing its
    # own package's __init__ back would be, so only the downward __init__ -> child edge is dropped
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(m: str, path: list[str]) -> bool:
        state[m] = 1
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                cycle.extend(path[path.index(t):] + [m, t] if t in path else [m, t])
                return True
            if state.get(t) is None and visit(t, path + [m]):
                return True
        state[m] = 2
        return False

    for m in sorted(edges):
        if state.get(m) is None and visit(m, []):
            break
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_the_library_never_imports_recipes_or_scripts():
    for p in PKG.rglob("*.py"):
        text = p.read_text()
        assert "import recipes" not in text and "from recipes" not in text, p
        assert "data_prep" not in {n.split(".")[0] for n in _imports(p)}, p
