"""The package's import map, read from the source (every `import`, at module level or inside a function):
no import circles anywhere, and in the runtime no arrow from a lower layer up to a higher one. The
layers follow the data (sources -> faces -> inference -> filtering -> output), assembled above them
(config, the live page, daemon), with the commands and the CLI on top and shared helpers and formats at
the bottom. A module may import its own layer or any layer below. The offline rooms (`models`:
PyTorch; `offline`: tools) sit beside the runtime: only the commands may reach into them, and the
inference backends for the PyTorch backends the user asks for (both lazily;
tests/architecture/test_runtime_layers.py checks that a served clip never imports them)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers.paths import REPO

PACKAGE = REPO / "posebridge"
LAYERS = {
    0: {"posebridge", "errors", "validation", "paths", "tomlconfig", "timing", "imagefiles", "downloads",
        "extras", "formats", "opencv_quiet"},
    1: {"sources"},
    2: {"faces"},
    3: {"inference"},
    4: {"filtering"},
    5: {"output"},
    6: {"config", "view", "daemon"},
    7: {"commands"},
    8: {"cli", "__main__"},
}
OFFLINE = {"models", "offline"}
# (module, room it may import lazily) beyond the layer rule, each with its reason
ALLOWED = {
    ("posebridge.inference.backends", "models"): "the PyTorch backends, only when model.backend asks for one",
    ("posebridge.inference.estimator", "models"): "Estimator.from_model: a PyTorch network in memory",
    ("posebridge.inference.model_store", "models"): "`models list` reads a .pt checkpoint's metadata",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_map() -> dict[str, set[str]]:
    """module -> the posebridge modules it imports (a `from pkg import name` names the submodule when
    there is one, else the package)."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                subs = [f"{origin}.{a.name}" for a in node.names if f"{origin}.{a.name}" in files]
                targets = subs if len(subs) == len(node.names) else [origin, *subs]
            for t in targets:
                while t and t not in files and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t in files and t != mod and t.startswith("posebridge"):
                    edges[mod].add(t)
    return edges


def room(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "posebridge"


def layer(r: str) -> int | None:
    return next((k for k, rooms in LAYERS.items() if r in rooms), None)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def violations(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for a, targets in edges.items():
        ra = room(a)
        for b in targets:
            rb = room(b)
            if ra == rb or (a, rb) in ALLOWED:
                continue
            if ra in OFFLINE:
                continue  # offline tools may use the runtime
            if rb in OFFLINE:
                if ra not in ("commands", "cli"):
                    bad.append(f"{a} -> {b} (the runtime reaches into {rb})")
                continue
            la, lb = layer(ra), layer(rb)
            if la is None or lb is None:
                bad.append(f"{a} -> {b} (room {ra if la is None else rb} has no layer: add it to LAYERS)")
            elif lb > la:
                bad.append(f"{a} -> {b} (layer {la} {ra} up to layer {lb} {rb})")
    return sorted(bad)


def test_no_import_circles():
    assert cycles(import_map()) == []


def test_no_arrow_runs_up_a_layer():
    assert violations(import_map()) == []


def test_the_checks_can_fail():
    """A made-up map with a circle and an upward arrow is caught by both checks."""
    edges = {"posebridge.faces.base": {"posebridge.faces.detectors"},
             "posebridge.faces.detectors": {"posebridge.faces.base"},
             "posebridge.output.vmc": {"posebridge.config"}, "posebridge.config": set(),
             "posebridge.filtering.kalman": {"posebridge.offline.demo"}, "posebridge.offline.demo": set()}
    assert cycles(edges) == [["posebridge.faces.base", "posebridge.faces.detectors"]]
    assert violations(edges) == [
        "posebridge.filtering.kalman -> posebridge.offline.demo (the runtime reaches into offline)",
        "posebridge.output.vmc -> posebridge.config (layer 5 output up to layer 6 config)"]
