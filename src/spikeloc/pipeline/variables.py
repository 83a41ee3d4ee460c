"""Numbers for the paper: record them in notebooks, merge them, check published claims.

The paper never types a number that a run produced. Instead:

1. an analysis notebook calls :func:`record` for every number the text uses; each call
   rewrites ``results/variables/<module>.json`` atomically;
2. the ``variables`` rule merges all module files into ``results/variables.json`` with
   :func:`merge` (keys ``<module>.<name>``), failing if a variable declared in a module's
   manifest was not recorded;
3. the ``claims`` rule evaluates every claim of every manifest into ``results/claims.json``
   with :func:`evaluate_claims`, which the paper shows as its reproduction report.

Claims come in four kinds (manifest ``claims[].kind``):

* ``value`` (the default): a published value or range, a tolerance and the variable that
  regenerates it;
* ``trend``: a rank correlation (Spearman) over a recorded series (:func:`record_series`, x and
  y, e.g. accuracy per run against tau) with the claimed sign, significant at ``alpha``
  (two-sided) and at least ``min_rho`` in size;
* ``difference``: two recorded sample sets (:func:`record_samples`, e.g. one accuracy per seed)
  differ in the claimed direction, by a two-sided test (Welch t, Mann-Whitney U, paired t or
  Wilcoxon) significant at ``alpha``; the effect size (Cohen's d) is reported;
* ``no_effect``: "A does not help": the same test finds no significant difference in the
  claimed direction of improvement (a claim of absence at the study's power, not a proof).

A relational claim that fails is reported as failing, with its statistic and p-value.

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
    "record_samples",
    "record_series",
    "recorder",
    "CLAIM_KINDS",
    "TESTS",
    "load",
    "merge",
    "evaluate_claim",
    "evaluate_claims",
    "two_sample_test",
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


def _numbers(name: str, values: Any, what: str) -> list[float]:
    """A list of finite floats from a sequence (numpy/torch arrays, pandas series, lists)."""
    if hasattr(values, "tolist") and callable(values.tolist):
        values = values.tolist()
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise VariablesError(f"{name}: {what} must be a sequence of numbers")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise VariablesError(f"{name}: {what}[{i}] must be a number, got {type(v).__name__}")
        v = float(v)
        if not math.isfinite(v):
            raise VariablesError(f"{name}: {what}[{i}] must be finite, got {v!r}")
        out.append(v)
    if not out:
        raise VariablesError(f"{name}: {what} is empty")
    return out


def _write_entry(
    name: str, entry: dict[str, Any], module: str | None, path: str | Path | None
) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise VariablesError(f"variable name {name!r}: must be lowercase snake case")
    module, path = _resolve(module, path)
    data = _read(path) if path.exists() else {"format": FORMAT, "module": module, "variables": {}}
    if data.get("module") != module:
        raise VariablesError(f"{path}: module: holds {data.get('module')!r}, not {module!r}")
    data["variables"][name] = entry
    atomic_write_json(path, data)


def record_samples(
    name: str,
    values: Any,
    fmt: str | None = None,
    *,
    module: str | None = None,
    path: str | Path | None = None,
    unit: str | None = None,
    description: str | None = None,
) -> list[float]:
    """Record a sample set (e.g. one test accuracy per seed) for ``difference``/``no_effect`` claims.

    The entry keeps every sample (``samples``), their number ``n``, mean ``value`` and sample
    standard deviation ``sd``; ``text`` is the mean formatted with ``fmt``, so the paper can
    print it like any variable and a ``value`` claim can check the mean.
    """
    xs = _numbers(name, values, "samples")
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    try:
        text = _text(mean, fmt)
    except (ValueError, TypeError) as exc:
        raise VariablesError(f"{name}: format {fmt!r} does not apply to {mean!r}: {exc}") from None
    entry: dict[str, Any] = {
        "kind": "samples",
        "value": mean,
        "text": text,
        "n": len(xs),
        "sd": sd,
        "samples": xs,
    }
    if unit:
        entry["unit"] = unit
    if description:
        entry["description"] = description
    _write_entry(name, entry, module, path)
    return xs


def record_series(
    name: str,
    x: Any,
    y: Any,
    *,
    module: str | None = None,
    path: str | Path | None = None,
    unit: str | None = None,
    x_unit: str | None = None,
    description: str | None = None,
) -> tuple[list[float], list[float]]:
    """Record paired points (x, y) for a ``trend`` claim, e.g. x = tau of each run, y = its accuracy.

    Give every run as its own point (x repeats over seeds) so the test sees the spread between
    runs. ``value`` is the number of points, ``text`` says so.
    """
    xs, ys = _numbers(name, x, "x"), _numbers(name, y, "y")
    if len(xs) != len(ys):
        raise VariablesError(f"{name}: x has {len(xs)} points but y has {len(ys)}")
    entry: dict[str, Any] = {
        "kind": "series",
        "value": len(xs),
        "text": f"{len(xs)} points",
        "x": xs,
        "y": ys,
    }
    if unit:
        entry["unit"] = unit
    if x_unit:
        entry["x_unit"] = x_unit
    if description:
        entry["description"] = description
    _write_entry(name, entry, module, path)
    return xs, ys


def recorder(module: str, *, path: str | Path | None = None, fresh: bool = True):
    """A ``record(name, value, fmt=None, **kw)`` bound to one module's file.

    ``rec.samples(name, values, fmt)`` and ``rec.series(name, x, y)`` record sample sets and
    series (:func:`record_samples`, :func:`record_series`) into the same file.

    With ``fresh`` (the default) the file is started afresh first (:func:`reset`), so a
    re-run notebook leaves no stale numbers behind.
    """
    module, path = _resolve(module, path)
    if fresh:
        reset(module, path=path)

    def rec(name: str, value: Any, fmt: str | None = None, **kwargs: Any) -> Any:
        return record(name, value, fmt, module=module, path=path, **kwargs)

    def samples(name: str, values: Any, fmt: str | None = None, **kwargs: Any) -> list[float]:
        return record_samples(name, values, fmt, module=module, path=path, **kwargs)

    def series(name: str, x: Any, y: Any, **kwargs: Any) -> tuple[list[float], list[float]]:
        return record_series(name, x, y, module=module, path=path, **kwargs)

    rec.path = path  # type: ignore[attr-defined]
    rec.samples = samples  # type: ignore[attr-defined]
    rec.series = series  # type: ignore[attr-defined]
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


#: Claim kinds (manifest ``claims[].kind``) and the fields each requires.
CLAIM_KINDS: dict[str, tuple[str, ...]] = {
    "value": ("variable", "published", "tolerance"),
    "trend": ("variable", "direction"),
    "difference": ("a", "b", "direction"),
    "no_effect": ("a", "b"),
}
#: Directions each relational kind accepts.
DIRECTIONS: dict[str, tuple[str, ...]] = {
    "trend": ("increasing", "decreasing"),
    "difference": ("greater", "less", "two_sided"),
    "no_effect": ("greater", "less", "two_sided"),
}
#: Two-sample tests of ``difference`` and ``no_effect`` claims (all two-sided).
TESTS = ("welch", "mann_whitney", "paired_t", "wilcoxon")


def _key(var: str, module: str) -> str:
    return var if "." in var else f"{module}.{var}"


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def evaluate_claim(
    claim: Mapping[str, Any], module: str, variables: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """One claim against the regenerated variables (dispatching on ``claim["kind"]``).

    A ``value`` claim's ``published`` is a number (within if ``|measured - published| <=
    tolerance``) or a range ``[lo, hi]`` (within if ``lo - tolerance <= measured <= hi +
    tolerance``). Relational kinds: :func:`_evaluate_trend`, :func:`_evaluate_two_samples`.
    Every result has ``kind``, ``status``, ``within`` (the claim holds), ``published_text`` and
    ``measured_text``.
    """
    kind = claim.get("kind", "value")
    if kind == "trend":
        return _evaluate_trend(claim, module, variables)
    if kind in ("difference", "no_effect"):
        return _evaluate_two_samples(claim, module, variables)
    if kind != "value":
        raise VariablesError(
            f"claim {module}.{claim.get('name')}: kind: {kind!r} is not one of {list(CLAIM_KINDS)}"
        )
    var = str(claim["variable"])
    key = _key(var, module)
    published = claim["published"]
    tol = float(claim.get("tolerance", 0.0))
    result: dict[str, Any] = {
        "module": module,
        "name": claim["name"],
        "kind": "value",
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


def _relational_base(claim: Mapping[str, Any], module: str) -> dict[str, Any]:
    return {
        "module": module,
        "name": claim["name"],
        "kind": claim.get("kind", "value"),
        "text": claim.get("text", ""),
        "note": claim.get("note", ""),
        "source": claim.get("source", ""),
        "alpha": float(claim.get("alpha", 0.05)),
        "published_text": claim.get("published_text", ""),
        "statistic": None,
        "statistic_name": "",
        "p_value": None,
        "test": "",
        "measured": None,
        "measured_text": "—",
        "within": False,
    }


def _get_kind(
    variables: Mapping[str, Mapping[str, Any]], key: str, kind: str, result: dict[str, Any]
) -> Mapping[str, Any] | None:
    """The variable ``key`` if it was recorded as ``kind``; else mark ``result`` and return None."""
    entry = variables.get(key)
    if entry is None:
        result.update(status="missing", within=False)
        result["measured_text"] = f"{key} not recorded"
        return None
    if entry.get("kind") != kind:
        how = "record_samples" if kind == "samples" else "record_series"
        result.update(status="wrong variable kind", within=False)
        result["measured_text"] = f"{key} is not a {kind} variable (record it with {how})"
        return None
    return entry


def _evaluate_trend(
    claim: Mapping[str, Any], module: str, variables: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Spearman's rank correlation of a series: holds if its sign is the claimed direction,
    ``|rho| >= min_rho`` and the two-sided p-value is below ``alpha``."""
    from scipy import stats

    r = _relational_base(claim, module)
    key = _key(str(claim["variable"]), module)
    direction = claim["direction"]
    min_rho = float(claim.get("min_rho", 0.0))
    r.update(
        variable=key,
        direction=direction,
        min_rho=min_rho,
        test="Spearman rank corr.",
        statistic_name="rho",
    )
    if not r["published_text"]:
        sign = "<" if direction == "decreasing" else ">"
        bound = f"{'-' if direction == 'decreasing' else ''}{_num_text(min_rho)}"
        r["published_text"] = f"{direction} (rho {sign} {bound})" if min_rho > 0 else direction
    entry = _get_kind(variables, key, "series", r)
    if entry is None:
        return r
    x, y = entry["x"], entry["y"]
    r["n"] = len(x)
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        r.update(status="undefined", measured_text=f"n = {len(x)}: too few distinct points")
        return r
    res = stats.spearmanr(x, y)
    rho, p = float(res.statistic), float(res.pvalue)
    if not (math.isfinite(rho) and math.isfinite(p)):
        r.update(status="undefined", measured_text="rank correlation undefined")
        return r
    signed = rho if direction == "increasing" else -rho
    holds = signed > 0 and abs(rho) >= min_rho and p < r["alpha"]
    r.update(
        statistic=rho,
        measured=rho,
        p_value=p,
        within=holds,
        status="holds" if holds else "fails",
        measured_text=f"rho = {rho:+.2f}, {_p_text(p)}, n = {len(x)}",
    )
    return r


def two_sample_test(
    a: Sequence[float], b: Sequence[float], test: str = "welch"
) -> tuple[float, float, float]:
    """``(statistic, two-sided p, Cohen's d)`` of samples ``a`` against ``b``.

    ``welch``: Welch's t-test; ``mann_whitney``: Mann-Whitney U; ``paired_t``: paired t-test;
    ``wilcoxon``: Wilcoxon signed-rank (paired tests need equal lengths, pairs in order, e.g.
    by seed). Cohen's d is the mean difference over the pooled sd (paired: over the sd of the
    differences); NaN where the spread is zero.
    """
    import numpy as np
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    if test not in TESTS:
        raise VariablesError(f"test {test!r}: must be one of {list(TESTS)}")
    paired = test in ("paired_t", "wilcoxon")
    if paired and len(a) != len(b):
        raise VariablesError(
            f"test {test}: needs samples of equal length, got {len(a)} and {len(b)}"
        )
    if paired:
        d = a - b
        sd = float(np.std(d, ddof=1)) if len(d) > 1 else 0.0
        eff = float(np.mean(d)) / sd if sd > 0 else math.nan
        if test == "paired_t":
            res = stats.ttest_rel(a, b)
        else:
            res = stats.wilcoxon(a, b) if np.any(d != 0) else None
            if res is None:
                return 0.0, 1.0, eff
    else:
        va = float(np.var(a, ddof=1)) if len(a) > 1 else 0.0
        vb = float(np.var(b, ddof=1)) if len(b) > 1 else 0.0
        pooled = math.sqrt(((len(a) - 1) * va + (len(b) - 1) * vb) / max(len(a) + len(b) - 2, 1))
        eff = (float(np.mean(a)) - float(np.mean(b))) / pooled if pooled > 0 else math.nan
        if test == "welch":
            res = stats.ttest_ind(a, b, equal_var=False)
        else:
            res = stats.mannwhitneyu(a, b, alternative="two-sided")
    return float(res.statistic), float(res.pvalue), eff


def _evaluate_two_samples(
    claim: Mapping[str, Any], module: str, variables: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """``difference``: a two-sided test significant at ``alpha`` with the mean difference in the
    claimed direction. ``no_effect``: the opposite -- it holds unless the test is significant
    with ``a`` better than ``b`` in ``direction`` (``two_sided``: significant either way)."""
    r = _relational_base(claim, module)
    kind = r["kind"]
    ka, kb = _key(str(claim["a"]), module), _key(str(claim["b"]), module)
    direction = claim.get("direction", "greater" if kind == "no_effect" else "two_sided")
    test = claim.get("test", "welch")
    names = {
        "welch": "Welch t-test",
        "mann_whitney": "Mann-Whitney U",
        "paired_t": "paired t-test",
        "wilcoxon": "Wilcoxon signed-rank",
    }
    stat_names = {"welch": "t", "mann_whitney": "U", "paired_t": "t", "wilcoxon": "W"}
    r.update(
        a=ka,
        b=kb,
        direction=direction,
        test=names.get(test, test),
        statistic_name=stat_names.get(test, test),
    )
    if not r["published_text"]:
        rel = {"greater": ">", "less": "<", "two_sided": "!="}[direction]
        short_a, short_b = ka.split(".", 1)[1], kb.split(".", 1)[1]
        r["published_text"] = (
            f"{short_a} {rel} {short_b}"
            if kind == "difference"
            else f"not {short_a} {rel} {short_b}"
        )
    ea = _get_kind(variables, ka, "samples", r)
    eb = _get_kind(variables, kb, "samples", r) if ea is not None else None
    if ea is None or eb is None:
        return r
    a, b = ea["samples"], eb["samples"]
    r.update(n_a=len(a), n_b=len(b), mean_a=ea["value"], mean_b=eb["value"])
    if len(a) < 2 or len(b) < 2:
        r.update(status="too few samples", measured_text=f"n = {len(a)}, {len(b)} (need 2 each)")
        return r
    stat, p, eff = two_sample_test(a, b, test)
    diff = float(ea["value"]) - float(eb["value"])
    r.update(difference=diff, effect_size=eff, statistic=stat, p_value=p, measured=diff)
    if not math.isfinite(p):  # no spread at all: equal constants
        p = 1.0 if diff == 0 else 0.0
        r["p_value"] = p
    significant = p < r["alpha"]
    toward = {"greater": diff > 0, "less": diff < 0, "two_sided": diff != 0}[direction]
    holds = (significant and toward) if kind == "difference" else not (significant and toward)
    unit = claim.get("unit") or ea.get("unit", "")
    r["unit"] = unit
    d_text = "d = n/a" if not math.isfinite(eff) else f"d = {eff:+.2f}"
    r.update(
        within=holds,
        status="holds" if holds else "fails",
        measured_text=f"diff = {diff:+.3g}{unit and ' ' + unit}, {_p_text(p)}, {d_text}, "
        f"n = {len(a)}/{len(b)}",
    )
    # JSON has no NaN or infinity (Typst and strict readers refuse them): a test statistic or
    # effect size that is not finite -- a paired test whose differences are all equal gives
    # t = +-inf -- is written as null; the p-value and the verdict above still use it
    for key in ("effect_size", "statistic"):
        if r[key] is not None and not math.isfinite(r[key]):
            r[key] = None
    return r


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
                "n_value": sum(r["kind"] == "value" for r in results),
                "n_value_within": sum(r["within"] for r in results if r["kind"] == "value"),
                "n_relational": sum(r["kind"] != "value" for r in results),
                "n_holding": sum(r["within"] for r in results if r["kind"] != "value"),
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
        if r.get("kind", "value") == "value":
            print(
                f"{mark} {r['module']}.{r['name']}: published {r['published_text']}, "
                f"regenerated {r['measured_text']} (tolerance {_num_text(r['tolerance'])})"
            )
        else:
            print(
                f"{mark} {r['module']}.{r['name']} ({r['kind']}): claimed {r['published_text']}, "
                f"{r['test']}: {r['measured_text']} -> {r['status']}"
            )
    n_ok = sum(r["within"] for r in results)
    print(f"{n_ok}/{len(results)} claims within tolerance -> {args.out}")
    if args.strict and n_ok < len(results):
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
