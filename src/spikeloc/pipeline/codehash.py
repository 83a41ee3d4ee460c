"""Which library files compute a result, derived from the imports (not a hand-kept list).

A trained run depends on every module that the training entry point imports, directly or
inside a function (the engine imports its kernel-thread helper lazily, for example), and on the
``__init__`` of every package on the way. :func:`code_files` follows those imports through the
source (``ast``, nothing is imported); :func:`code_hash` hashes what the files compute -- their
syntax trees without docstrings, so comments, docstrings and formatting do not count -- and so
a kernel edit retrains every run while a docstring or plotting edit retrains none.

    python -m spikeloc.pipeline.codehash            # the files and the hash of training
"""

from __future__ import annotations

import ast
import hashlib
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["TRAINING_ENTRY_POINTS", "code_files", "code_hash"]

PACKAGE = "spikeloc"
#: What a training run executes: the training loop, alone or as a member of an ensemble.
TRAINING_ENTRY_POINTS = ("spikeloc.core.training", "spikeloc.core.ensemble")


def _package_dir() -> Path:
    return Path(__file__).resolve().parents[1]


def _module_file(name: str, base: Path) -> Path | None:
    """The file of module ``spikeloc.a.b`` (``a/b.py`` or ``a/b/__init__.py``), or None."""
    parts = name.split(".")[1:]
    path = base.joinpath(*parts)
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def _module_name(path: Path, base: Path) -> str:
    rel = path.relative_to(base).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([PACKAGE, *parts])


def _imported(path: Path, module: str, base: Path) -> set[str]:
    """Every ``spikeloc`` module the file imports, anywhere in it (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                src = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                src = node.module or ""
            found.add(src)
            # ``from spikeloc.engine import cpu_kernels`` imports a module, not a name
            found.update(f"{src}.{a.name}" for a in node.names)
    return {n for n in found if n == PACKAGE or n.startswith(PACKAGE + ".")}


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def code_files(entry_points: Iterable[str] = TRAINING_ENTRY_POINTS) -> list[Path]:
    """The library files the entry points execute when imported and run, sorted."""
    base = _package_dir()
    todo = [n for e in entry_points for n in _with_parents(e)]
    seen: dict[str, Path] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name, base)
        if path is None:
            continue  # a name imported from a module, not a module
        seen[name] = path
        for imported in _imported(path, name, base):
            todo.extend(n for n in _with_parents(imported) if n not in seen)
    return sorted(set(seen.values()))


def _code_only(source: str, filename: str) -> str:
    """The syntax tree of ``source`` without docstrings, as text (no comments, no layout)."""
    tree = ast.parse(source, filename=filename)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def code_hash(entry_points: Iterable[str] = TRAINING_ENTRY_POINTS) -> str:
    """sha256 (16 hex digits) over the paths and code (:func:`_code_only`) of
    :func:`code_files`."""
    base = _package_dir()
    h = hashlib.sha256()
    for path in code_files(entry_points):
        h.update(path.relative_to(base).as_posix().encode() + b"\0")
        h.update(_code_only(path.read_text(encoding="utf-8"), str(path)).encode() + b"\0")
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    entry = tuple(argv) if argv else TRAINING_ENTRY_POINTS
    base = _package_dir()
    for path in code_files(entry):
        print(_module_name(path, base), path.relative_to(base.parent))
    print("code hash:", code_hash(entry))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
