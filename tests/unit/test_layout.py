"""The library's layout: layers import only downwards, no import cycles, each subpackage
imports on its own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from spikeloc.pipeline import codehash

SRC = Path(codehash.__file__).resolve().parents[1]
# the layers, bottom first; a module may import its own layer and those below it
LAYERS = {
    "errors": 0,
    "io": 0,
    "provenance": 0,
    "engine": 1,
    "core": 2,
    "analysis": 3,
    "pipeline": 4,
    "cli": 5,
}
SUBPACKAGES = ["spikeloc.engine", "spikeloc.core", "spikeloc.analysis", "spikeloc.pipeline"]


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        out[codehash._module_name(path, SRC)] = path
    return out


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def imports_of(module: str, path: Path) -> set[str]:
    """The spikeloc modules ``module`` imports. ``from pkg import sub`` of a submodule is an
    edge to ``pkg.sub`` only (a parent package is initialised by every import of its
    submodules, which is not a dependency of the importer on the package's own code)."""
    known = modules()
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            subs = {f"{node.module}.{a.name}" for a in node.names}
            found.update(subs & set(known))
            if not subs <= set(known):
                found.add(node.module)
    return {m for m in found if m in known and m != module}


def test_every_module_is_in_a_layer():
    unplaced = [m for m in modules() if m != "spikeloc" and layer(m) is None]
    assert unplaced == [], f"modules outside the layers of spikeloc/__init__.py: {unplaced}"


def test_layers_import_only_downwards():
    wrong = []
    for module, path in modules().items():
        for imported in imports_of(module, path):
            if layer(imported) is not None and layer(module) is not None:
                if layer(imported) > layer(module):
                    wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_no_import_cycles():
    graph = {m: imports_of(m, p) for m, p in modules().items()}
    # depth-first search for a back edge
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle.extend([*stack, node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*stack, node]):
                return True
        state[node] = 2
        return False

    for node in sorted(graph):
        if state.get(node) is None and visit(node, []):
            break
    assert cycle == [], " -> ".join(cycle)


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_each_subpackage_imports_on_its_own(package):
    mods = [m for m in modules() if m == package or m.startswith(package + ".")]
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in mods)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


def test_the_engine_never_imports_the_model_core():
    code = (
        "import sys, spikeloc.engine.layers\n"
        "core = sorted(m for m in sys.modules if m.startswith('spikeloc.core'))\n"
        "assert not core, core\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
