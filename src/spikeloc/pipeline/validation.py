"""Reading and validating the project's YAML files, with one error style.

Every problem with a config, a module manifest or a contributor file is reported as one line::

    <file>: <field>: <problem>

for example ``workflow/analyses/x.yaml: sweeps.tau.grid.model.tau_s[1]: must be a number, got
a string``. The schemas live in ``workflow/schemas/<name>.schema.json`` (JSON Schema 2020-12);
:func:`schema_problems` turns jsonschema's errors into such lines, :func:`with_defaults` fills in
every ``default`` the schema declares, and :func:`read_yaml` reads a file, rejecting a key
written twice (YAML silently keeps the last one).
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from spikeloc.errors import SpikelocError

__all__ = [
    "ProblemsError",
    "field_path",
    "load_schema",
    "read_yaml",
    "schema_problems",
    "show_path",
    "type_name",
    "with_defaults",
]

SCHEMAS_DIR = Path("workflow") / "schemas"


class ProblemsError(SpikelocError, ValueError):
    """One or more ``<file>: <field>: <problem>`` lines; ``problems`` holds them all.

    ``str()`` is every line (the workflow prints them at parse time); :meth:`first_line` is the
    first problem and how many more, for a command line that prints one line.
    """

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def first_line(self, hint: str = "") -> str:
        if len(self.problems) <= 1:
            return self.problems[0] if self.problems else ""
        more = f" (and {len(self.problems) - 1} more problem(s){'; ' + hint if hint else ''})"
        return self.problems[0] + more


def show_path(path: str | Path) -> str:
    """A path as messages show it: relative to the working directory when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def field_path(parts: Iterable[Any]) -> str:
    """``figures[0].id`` from the parts of a path into a document."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _join(prefix: str, key: str) -> str:
    return key if prefix == "(document)" else f"{prefix}.{key}"


def type_name(value: Any) -> str:
    """``a string``, ``a list``, ... for messages."""
    return {
        type(None): "null",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def _expected(types: Any) -> str:
    names = {
        "string": "a string",
        "null": "null",
        "array": "a list",
        "object": "a mapping",
        "integer": "an integer",
        "boolean": "a boolean",
        "number": "a number",
    }
    types = [types] if isinstance(types, str) else list(types)
    return " or ".join(names.get(t, t) for t in types)


def _suggest(value: Any, choices: Sequence[str], normalise: Callable[[str], str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    if not isinstance(value, str):
        return ""
    wanted = normalise(value)
    by_norm = {normalise(c): c for c in choices}
    if wanted in by_norm:
        return f" (did you mean '{by_norm[wanted]}'?)"
    close = difflib.get_close_matches(wanted, list(by_norm), n=1, cutoff=0.6)
    return f" (did you mean '{by_norm[close[0]]}'?)" if close else ""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key written twice in one mapping."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def read_yaml(path: str | Path) -> tuple[Any, str | None]:
    """``(data, None)``, or ``(None, one-line problem)`` for a file that cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{show_path(path)}: (file): cannot read: {exc}"
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader), None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return None, f"{show_path(path)}: (yaml): cannot parse{where}: {problem}"


def _schema_file(name: str, root: str | Path | None) -> Path:
    bases = [Path(root)] if root is not None else []
    bases += [Path(__file__).resolve().parents[3], Path.cwd()]
    for base in bases:
        candidate = base / SCHEMAS_DIR / f"{name}.schema.json"
        if candidate.is_file():
            return candidate
    raise SpikelocError(f"{SCHEMAS_DIR / (name + '.schema.json')}: (file): schema not found")


@cache
def _load_schema_file(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def load_schema(name: str, root: str | Path | None = None) -> dict:
    """The JSON schema ``workflow/schemas/<name>.schema.json`` (a shared, cached dict)."""
    return _load_schema_file(_schema_file(name, root))


def _sort_key(error: jsonschema.ValidationError) -> list:
    return [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.absolute_path]


def schema_problems(
    data: Any,
    schema: Mapping[str, Any],
    where: str,
    *,
    pattern_hints: Mapping[str, str] | None = None,
    normalise: Callable[[str], str] = str.casefold,
    enum_wording: Callable[[list, Any, list[str]], str | None] | None = None,
) -> list[str]:
    """Every schema violation of ``data`` as ``<where>: <field>: <problem>``, in document order.

    ``pattern_hints`` maps a key name, or a regular expression, to the wording of a failed
    ``pattern`` (instead of the regular expression itself); ``enum_wording(path, value, choices)`` may word an enum failure
    (None: the default wording).
    """
    validator = jsonschema.Draft202012Validator(schema)
    lines: list[str] = []
    for err in sorted(validator.iter_errors(data), key=_sort_key):
        lines += _problem_lines(err, where, pattern_hints or {}, normalise, enum_wording)
    return list(dict.fromkeys(lines))


def _problem_lines(err, where, pattern_hints, normalise, enum_wording) -> list[str]:
    path = list(err.absolute_path)
    field = field_path(path)
    kind = err.validator
    if kind == "additionalProperties":
        allowed = list(err.schema.get("properties", {}))
        extra = sorted((k for k in err.instance if k not in allowed), key=str)
        return [
            f"{where}: {_join(field, str(k))}: unknown key{_suggest(k, allowed, normalise)}"
            f" (allowed: {', '.join(allowed)})"
            for k in extra
        ]
    if kind == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        return [f"{where}: {_join(field, k)}: missing required field" for k in missing]
    if kind == "type":
        return [
            f"{where}: {field}: must be {_expected(err.validator_value)}, "
            f"got {type_name(err.instance)}"
        ]
    if kind == "enum":
        choices = [str(c) for c in err.validator_value]
        worded = enum_wording(path, err.instance, choices) if enum_wording else None
        if worded:
            return [f"{where}: {field}: {worded}"]
        return [
            f"{where}: {field}: {err.instance!r} is not one of "
            f"{', '.join(choices)}{_suggest(err.instance, choices, normalise)}"
        ]
    if kind == "pattern":
        last = next((str(p) for p in reversed(path) if isinstance(p, str)), "")
        hint = pattern_hints.get(err.validator_value)
        if "propertyNames" in err.relative_schema_path:
            wording = hint or f"does not match {err.validator_value}"
            return [f"{where}: {field}: key {err.instance!r} is {wording}"]
        hint = pattern_hints.get(last) or hint
        if hint:
            return [f"{where}: {field}: {err.instance!r} is {hint}"]
        return [f"{where}: {field}: {err.instance!r} does not match {err.validator_value}"]
    if kind == "propertyNames":
        return [f"{where}: {field}: key {err.instance!r}: {err.message}"]
    if kind == "minLength":
        return [f"{where}: {field}: must not be empty"]
    if kind == "minItems":
        return [f"{where}: {field}: must list at least {err.validator_value} entry"]
    if kind == "uniqueItems":
        return [f"{where}: {field}: lists the same entry twice"]
    if kind in ("oneOf", "anyOf") and err.context:
        # the branch of the value's own type says what is wrong with it (seeds: 0 is below
        # the minimum, not "must be a list")
        fitting = [e for e in err.context if e.validator != "type"]
        if not fitting and all(not e.path for e in err.context):
            wanted = dict.fromkeys(_expected(e.validator_value) for e in err.context)
            return [
                f"{where}: {field}: must be {' or '.join(wanted)}, got {type_name(err.instance)}"
            ]
        best = jsonschema.exceptions.best_match(fitting or err.context)
        return _problem_lines(best, where, pattern_hints, normalise, enum_wording)
    message = err.message if len(err.message) <= 160 else err.message[:157] + "..."
    return [f"{where}: {field}: {message}"]


def _deref(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def with_defaults(data: Any, schema: Mapping[str, Any], root: Mapping[str, Any] | None = None):
    """A copy of ``data`` with every missing key that has a schema ``default`` filled in."""
    root = root or schema
    schema = _deref(schema, root)
    if isinstance(data, list) and isinstance(schema.get("items"), dict):
        return [with_defaults(item, schema["items"], root) for item in data]
    if not isinstance(data, dict):
        return copy.deepcopy(data)
    out = dict(data)
    props = schema.get("properties", {})
    for key, sub in props.items():
        sub = _deref(sub, root)
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if key in out:
            out[key] = with_defaults(out[key], sub, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in out:
            if key not in props:
                out[key] = with_defaults(out[key], extra, root)
    return out
