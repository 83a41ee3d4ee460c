"""Where the published prose and its code disagree, and what reproduces each side.

``docs/discrepancies.yaml`` lists the reproduction catalogue's 17 disagreements; each names,
for the text's side and the code's, what a reader sets or reads to get it: a run-config key
(``config``), a preset, a keyword of a library function or a field of a library class
(``option``), a metric or recorded variable (``metric``), or nothing (``none``: a wording
difference). :func:`check` verifies that every name exists in the library (so the table cannot
drift from the code); the paper's reproduction report prints the table
(``paper_modules.json`` carries it).

    python -m spikeloc.pipeline.discrepancies       # check; exit 1 and one line per problem
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spikeloc.pipeline.validation import ProblemsError, read_yaml

__all__ = ["DISCREPANCIES", "check", "describe", "load"]

#: The table, relative to the repository root.
DISCREPANCIES = "docs/discrepancies.yaml"
SIDE_KINDS = ("config", "preset", "option", "metric", "none")


def load(path: str | Path = DISCREPANCIES) -> list[dict[str, Any]]:
    """The items, each with ``number``, ``topic``, ``module``, ``text``, ``code``, ``follows``
    and ``sides`` (``text`` and ``code``); a malformed file raises :class:`ProblemsError`."""
    data, problem = read_yaml(path)
    if problem or not isinstance(data, Mapping) or not isinstance(data.get("items"), list):
        raise ProblemsError([f"{path}: {problem or 'items: must be a list'}"])
    problems = []
    items = data["items"]
    for i, item in enumerate(items):
        where = f"{path}: items[{i}]"
        for key in ("number", "topic", "module", "text", "code", "follows", "sides"):
            if key not in item:
                problems.append(f"{where}.{key}: missing")
        if item.get("follows") not in ("text", "code", "both"):
            problems.append(f"{where}.follows: must be text, code or both")
        for side in ("text", "code"):
            kind = (item.get("sides") or {}).get(side, {}).get("kind")
            if kind not in SIDE_KINDS:
                problems.append(
                    f"{where}.sides.{side}.kind: must be one of {', '.join(SIDE_KINDS)}"
                )
    if problems:
        raise ProblemsError(problems)
    return items


def _check_side(side: Mapping[str, Any], root: Path) -> str | None:
    """Why ``side`` does not name something of the library, or None."""
    from spikeloc.core.config import PRESETS, config_from_dict
    from spikeloc.errors import ConfigError

    kind = side["kind"]
    if kind == "none":
        return None
    if kind == "preset":
        return None if side.get("name") in PRESETS else f"no preset {side.get('name')!r}"
    if kind == "config":
        tree: dict[str, Any] = {"preset": "basic"}
        node = tree
        *parents, leaf = str(side.get("key", "")).split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = side.get("value")
        try:
            config_from_dict(tree, "discrepancy")
        except ConfigError as exc:
            return f"{side.get('key')}: {exc.problem}"
        return None
    name = str(side.get("name", ""))
    if kind == "metric" and ":" not in name:
        module, _, variable = name.partition(".")
        path = root / "workflow" / "analyses" / f"{module}.yaml"
        data, problem = read_yaml(path)
        declared = (
            {v.get("name") for v in (data or {}).get("variables", [])} if not problem else set()
        )
        return None if variable in declared else f"{name}: not a declared variable of {path}"
    module, _, attr = name.partition(":")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as exc:
        return f"{name}: {exc}"
    parts = attr.split(".")
    is_field = kind == "option" and "keyword" not in side
    for part in parts[:-1] if is_field else parts:  # a field: walk to its class
        obj = getattr(obj, part, None)
        if obj is None:
            return f"{name}: {module} has no {part}"
    if kind == "metric":
        return None if callable(obj) else f"{name}: not a function"
    if "keyword" in side:  # a keyword of a function
        params = inspect.signature(obj).parameters
        if side["keyword"] not in params:
            return f"{name}: has no keyword {side['keyword']!r}"
        hint = typing.get_type_hints(obj).get(side["keyword"])
    else:  # a field of a (data) class
        if not dataclasses.is_dataclass(obj):
            return f"{name}: {'.'.join(parts[:-1]) or attr} is not a dataclass"
        fields = {f.name: f for f in dataclasses.fields(obj)}
        if parts[-1] not in fields:
            return f"{name}: has no field {parts[-1]!r}"
        hint = typing.get_type_hints(obj).get(parts[-1])
    if typing.get_origin(hint) is typing.Literal and side.get("value") not in typing.get_args(hint):
        return f"{name}: {side.get('value')!r} is not one of {typing.get_args(hint)}"
    return None


def check(path: str | Path = DISCREPANCIES, *, root: str | Path = ".") -> list[str]:
    """Every problem of the table: malformed entries, or names the library does not have."""
    root = Path(root)
    try:
        items = load(root / path)
    except ProblemsError as exc:
        return list(exc.problems)
    problems = []
    numbers = [i["number"] for i in items]
    if numbers != list(range(1, len(items) + 1)):
        problems.append(f"{path}: items: numbered {numbers}, not 1..{len(items)} in order")
    for i, item in enumerate(items):
        for side in ("text", "code"):
            why = _check_side(item["sides"][side], root)
            if why:
                problems.append(f"{path}: items[{i}].sides.{side}: {why}")
    return problems


def describe(side: Mapping[str, Any]) -> str:
    """One line for a side, as the paper prints it."""
    kind = side["kind"]
    if kind == "none":
        return "-"
    if kind == "preset":
        return f"preset {side['name']}"
    if kind == "config":
        value = side.get("value")
        shown = (
            "null" if value is None else str(value).lower() if isinstance(value, bool) else value
        )
        return f"{side['key']}: {shown}"
    if kind == "metric":
        return f"metric {side['name'].split(':')[-1]}"
    name = side["name"].split(":", 1)[1]
    if "keyword" in side:
        return f"{name}({side['keyword']}={side.get('value')!r})"
    return f"{name} = {side.get('value')!r}"


def main(argv: list[str] | None = None) -> int:
    problems = check()
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"{DISCREPANCIES}: every side names something of the library")
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
