"""Numbers for the paper: record them in notebooks, merge them, check published claims.

The paper never types a number that a run produced. Instead:

1. an analysis notebook calls :func:`record` for every number the text uses; each call
   rewrites ``results/variables/<module>.json`` atomically;
2. the ``variables`` rule merges all module files into ``results/variables.json`` with
   :func:`merge` (keys ``<module>.<name>``), failing if a variable declared in a module's
   manifest was not recorded;
3. the ``claims`` rule evaluates every claim of every manifest (a published value or range,
   a tolerance and the variable that regenerates it) into ``results/claims.json`` with
   :func:`evaluate_claims`, which the paper shows as its reproduction report.

Command line (used by the workflow)::

    python -m spikeloc.pipeline.variables merge --analyses workflow/analyses --out results/variables.json \
        results/variables/*.json
    python -m spikeloc.pipeline.variables claims --variables results/variables.json \
        --analyses workflow/analyses --out results/claims.json
"""

from __future__ import annotations

import argparse
import json
import math
import numbers
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from spikeloc.errors import SpikelocError
from spikeloc.io import atomic_write_json

__all__ = [
    "NAME_RE",
    "VariablesError",
    "project_root",
    "variables_path",
    "reset",
    "record",
    "recorder",
    "load",
    "merge",
    "evaluate_claim",
    "evaluate_claims",
    "main",
]

#: Variable, module and claim names: lowercase snake case.
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
FORMAT = "spikeloc-variables/1"


class VariablesError(SpikelocError, ValueError):
    """A bad variable name or value, a malformed variables file, or a missing variable."""


# ----------------------------------------------------------------------------- locations


def project_root(start: str | Path | None = None) -> Path:
    """The repository root above ``start`` (default: the current directory).

    The root is the first directory that holds ``workflow/analyses``. Notebooks call this so
    they run the same from Jupyter (cwd ``workflow/notebooks``) and from papermill (cwd = root).
    """
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "workflow" / "analyses").is_dir():
            return d
    raise SpikelocError(
        f"{here}: no directory above it holds workflow/analyses; run from inside the repository"
    )


def variables_path(module: str, root: str | Path = ".") -> Path:
    """``<root>/results/variables/<module>.json``."""
    return Path(root) / "results" / "variables" / f"{module}.json"


def _resolve(module: str | None, path: str | Path | None) -> tuple[str, Path]:
    if path is None:
        if module is None:
            raise VariablesError("record: give module= or path= (where to write the variable)")
        path = variables_path(module)
    path = Path(path)
    module = module or path.stem
    if not NAME_RE.match(module):
        raise VariablesError(f"module {module!r}: must be lowercase snake case")
    return module, path


# ----------------------------------------------------------------------------- recording


def _plain(name: str, value: Any) -> int | float | str | bool:
    """A JSON scalar from ``value`` (numpy/torch scalars unwrapped); non-finite is an error."""
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (ValueError, RuntimeError):
            raise VariablesError(f"{name}: must be a scalar, got an array") from None
    if isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise VariablesError(f"{name}: must be finite, got {value!r}")
        return value
    raise VariablesError(f"{name}: must be a number, string or bool, got {type(value).__name__}")


def _text(value: int | float | str | bool, fmt: str | None) -> str:
    if fmt:
        return format(value, fmt)
    if isinstance(value, float):
        return format(value, ".4g")
    return str(value)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VariablesError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise VariablesError(f"{path}: invalid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise VariablesError(f"{path}: format: expected {FORMAT!r} (written by variables.record)")
    if not isinstance(data.get("variables"), dict):
        raise VariablesError(f"{path}: variables: missing")
    return data


def reset(module: str | None = None, *, path: str | Path | None = None) -> Path:
    """Start a module's variables file afresh (so a variable no longer recorded disappears)."""
    module, path = _resolve(module, path)
    atomic_write_json(path, {"format": FORMAT, "module": module, "variables": {}})
    return path


def record(
    name: str,
    value: Any,
    fmt: str | None = None,
    *,
    module: str | None = None,
    path: str | Path | None = None,
    unit: str | None = None,
    description: str | None = None,
) -> Any:
    """Record one number for the paper; returns ``value`` so it can be used inline.

    ``fmt`` is a Python format spec for the text the paper prints (``".1f"``, ``".3g"``,
    ``","``); ``unit`` is printed after it by the paper (``"deg"``, ``"%"``, ``"Hz"``). The file
    is ``path`` or ``results/variables/<module>.json``, rewritten atomically on every call.
    """
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise VariablesError(f"variable name {name!r}: must be lowercase snake case")
    module, path = _resolve(module, path)
    plain = _plain(name, value)
    try:
        text = _text(plain, fmt)
    except (ValueError, TypeError) as exc:
        raise VariablesError(f"{name}: format {fmt!r} does not apply to {plain!r}: {exc}") from None
    data = _read(path) if path.exists() else {"format": FORMAT, "module": module, "variables": {}}
    if data.get("module") != module:
        raise VariablesError(f"{path}: module: holds {data.get('module')!r}, not {module!r}")
    entry: dict[str, Any] = {"value": plain, "text": text}
    if unit:
        entry["unit"] = unit
    if description:
        entry["description"] = description
    data["variables"][name] = entry
    atomic_write_json(path, data)
    return value


def recorder(module: str, *, path: str | Path | None = None, fresh: bool = True):
    """A ``record(name, value, fmt=None, **kw)`` bound to one module's file.

    With ``fresh`` (the default) the file is started afresh first (:func:`reset`), so a
    re-run notebook leaves no stale numbers behind.
    """
    module, path = _resolve(module, path)
    if fresh:
        reset(module, path=path)

    def rec(name: str, value: Any, fmt: str | None = None, **kwargs: Any) -> Any:
        return record(name, value, fmt, module=module, path=path, **kwargs)

    rec.path = path  # type: ignore[attr-defined]
    return rec


def load(path: str | Path) -> dict[str, dict[str, Any]]:
    """The variables of one module file, or of the merged file (keys ``module.name``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VariablesError(f"{path}: no such file") from None
    if isinstance(data, dict) and data.get("format") == FORMAT:
        return dict(data["variables"])
    if isinstance(data, dict) and isinstance(data.get("variables"), dict):
        return dict(data["variables"])
    raise VariablesError(f"{path}: not a variables file")


# ----------------------------------------------------------------------------- manifests


def _manifests(analyses_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The checked manifests (spikeloc.pipeline.manifests), as dicts with their ``_path``."""
    from spikeloc.pipeline.manifests import load_manifests

    return {name: {**m.data, "_path": m.source} for name, m in load_manifests(analyses_dir).items()}


# ----------------------------------------------------------------------------- merging


def merge(
    inputs: Iterable[str | Path],
    out: str | Path,
    *,
    analyses_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Merge module variable files into ``out`` with keys ``<module>.<name>``.

    With ``analyses_dir``, every variable a module's manifest declares (``variables[].name``)
    must have been recorded, and each module file must belong to a manifest.
    """
    manifests = _manifests(analyses_dir) if analyses_dir is not None else {}
    merged: dict[str, Any] = {}
    seen: set[str] = set()
    for p in sorted(Path(x) for x in inputs):
        data = _read(p)
        module = data.get("module")
        if module in seen:
            raise VariablesError(f"{p}: module: {module!r} appears in two variables files")
        seen.add(module)
        if manifests and module not in manifests:
            raise VariablesError(f"{p}: module: no workflow manifest for {module!r}")
        declared = manifests.get(module, {}).get("variables") or []
        for i, var in enumerate(declared):
            name = var.get("name") if isinstance(var, dict) else None
            if name not in data["variables"]:
                where = manifests[module]["_path"]
                raise VariablesError(
                    f"{p}: {name}: declared in {where} (variables[{i}]) but not recorded by the "
                    "notebook (call variables.record)"
                )
        for name, entry in sorted(data["variables"].items()):
            entry = dict(entry)
            decl = next(
                (v for v in declared if isinstance(v, dict) and v.get("name") == name), None
            )
            if decl:
                for key in ("unit", "description"):
                    if decl.get(key) and not entry.get(key):
                        entry[key] = decl[key]
            entry["module"] = module
            merged[f"{module}.{name}"] = entry
    doc = {"format": FORMAT + "+merged", "modules": sorted(seen), "variables": merged}
    atomic_write_json(out, doc)
    return doc


# ----------------------------------------------------------------------------- claims


def _num_text(x: float) -> str:
    if float(x).is_integer():
        return str(int(x))
    return format(x, ".4g")


def _published_text(published: Any) -> str:
    if isinstance(published, list | tuple):
        lo, hi = published
        return f"{_num_text(lo)}–{_num_text(hi)}"
    return _num_text(published)


def evaluate_claim(
    claim: Mapping[str, Any], module: str, variables: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """One claim against the regenerated variables.

    ``published`` is a number (within if ``|measured - published| <= tolerance``) or a range
    ``[lo, hi]`` (within if ``lo - tolerance <= measured <= hi + tolerance``).
    """
    var = str(claim["variable"])
    key = var if "." in var else f"{module}.{var}"
    published = claim["published"]
    tol = float(claim.get("tolerance", 0.0))
    result: dict[str, Any] = {
        "module": module,
        "name": claim["name"],
        "text": claim.get("text", ""),
        "variable": key,
        "published": published,
        "published_text": claim.get("published_text") or _published_text(published),
        "tolerance": tol,
        "note": claim.get("note", ""),
        "source": claim.get("source", ""),
    }
    entry = variables.get(key)
    if entry is None:
        result.update(status="missing", within=False, measured=None, measured_text="—")
        result["difference"] = None
        return result
    measured = entry["value"]
    result["measured"] = measured
    result["measured_text"] = entry.get("text", str(measured))
    result["unit"] = claim.get("unit") or entry.get("unit", "")
    if isinstance(measured, bool) or not isinstance(measured, int | float):
        result.update(status="not a number", within=False, difference=None)
        return result
    if isinstance(published, list | tuple):
        lo, hi = float(published[0]), float(published[1])
        diff = 0.0 if lo <= measured <= hi else (measured - hi if measured > hi else measured - lo)
    else:
        diff = float(measured) - float(published)
    within = abs(diff) <= tol + 1e-12 * max(1.0, abs(float(measured)))
    result.update(difference=diff, within=within, status="reproduced" if within else "differs")
    return result


def evaluate_claims(
    variables_file: str | Path,
    analyses_dir: str | Path,
    out: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Every claim of every manifest, evaluated; written to ``out`` (JSON) when given."""
    variables = load(variables_file)
    results = []
    for module, manifest in _manifests(analyses_dir).items():
        for claim in manifest.get("claims") or []:
            results.append(evaluate_claim(claim, module, variables))
    if out is not None:
        n_ok = sum(r["within"] for r in results)
        atomic_write_json(
            out,
            {
                "format": "spikeloc-claims/1",
                "n_claims": len(results),
                "n_within": n_ok,
                "claims": results,
            },
        )
    return results


# ----------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m spikeloc.pipeline.variables",
        description="Merge variables, evaluate claims.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("merge", help="merge results/variables/*.json into one file")
    m.add_argument("inputs", nargs="*", type=Path, help="module variables files")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--analyses", type=Path, default=Path("workflow/analyses"))
    c = sub.add_parser("claims", help="evaluate every manifest claim")
    c.add_argument("--variables", type=Path, required=True)
    c.add_argument("--analyses", type=Path, default=Path("workflow/analyses"))
    c.add_argument("--out", type=Path, required=True)
    c.add_argument(
        "--strict", action="store_true", help="exit 1 if a claim is not within tolerance"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "merge":
            doc = merge(args.inputs, args.out, analyses_dir=args.analyses)
            print(
                f"{len(doc['variables'])} variables from {len(doc['modules'])} modules -> {args.out}"
            )
            return 0
        results = evaluate_claims(args.variables, args.analyses, args.out)
    except SpikelocError as exc:
        print(f"spikeloc: error: {exc}", file=sys.stderr)
        return 2
    for r in results:
        mark = "ok " if r["within"] else "DIFF"
        print(
            f"{mark} {r['module']}.{r['name']}: published {r['published_text']}, "
            f"regenerated {r['measured_text']} (tolerance {_num_text(r['tolerance'])})"
        )
    n_ok = sum(r["within"] for r in results)
    print(f"{n_ok}/{len(results)} claims within tolerance -> {args.out}")
    if args.strict and n_ok < len(results):
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
