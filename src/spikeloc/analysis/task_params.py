"""Task-run parameters as a frozen settings dataclass: every key checked, bad ones rejected
with :class:`spikeloc.errors.ConfigError` naming the key (relative to the run's ``params``).

A task function (``spikeloc.analysis.<module>:<function>``, see ``workflow/README.md``) gets the
manifest's ``params`` mapping; :func:`settings_from_params` turns it into the study's settings::

    s = settings_from_params(DDLSettings, params, seed=seed,
                             checks={"epochs": (lambda v: v >= 1, "must be >= 1")})
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from spikeloc.errors import ConfigError

__all__ = ["check_mapping", "settings_from_params", "settings_dict"]

Check = tuple[Callable[[Any], bool], str]


def _kind(value: Any) -> str:
    return "a boolean" if isinstance(value, bool) else type(value).__name__


def _coerce(name: str, want: Any, value: Any) -> Any:
    if want is bool:
        if not isinstance(value, bool):
            raise ConfigError(None, name, f"must be true or false, got {value!r}")
        return value
    if want is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(None, name, f"must be an integer, got {_kind(value)} {value!r}")
        return value
    if want is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(None, name, f"must be a number, got {_kind(value)} {value!r}")
        return float(value)
    if want is str:
        if not isinstance(value, str):
            raise ConfigError(None, name, f"must be a string, got {_kind(value)} {value!r}")
        return value
    raise TypeError(f"{name}: unsupported settings type {want!r}")  # a library bug


def settings_from_params(
    cls: type,
    params: Mapping[str, Any] | None,
    *,
    seed: int,
    checks: Mapping[str, Check] | None = None,
):
    """``cls(**params, seed=seed)`` after checking every key: known (a field of ``cls`` other
    than ``seed``), of the field's type (int, float, str or bool; an int is a float), and
    passing ``checks[key]`` (``(predicate, problem)``). Fields left out keep their defaults."""
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ConfigError(None, "<top>", f"params must be a mapping, got {_kind(params)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init and f.name != "seed"}
    values: dict[str, Any] = {}
    for key, value in params.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(None, str(key), f"unknown parameter (known: {known})")
        values[key] = _coerce(key, hints[key], value)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(None, "seed", f"must be an integer >= 0, got {seed!r}")
    settings = cls(**values, seed=seed)
    for key, (ok, problem) in (checks or {}).items():
        value = getattr(settings, key)
        if not ok(value):
            raise ConfigError(None, key, f"{problem}, got {value!r}")
    return settings


def settings_dict(settings: Any) -> dict[str, Any]:
    """The settings as a plain dict (what a task writes beside its model)."""
    return dataclasses.asdict(settings)


def check_mapping(
    params: Mapping[str, Any] | None,
    defaults: Mapping[str, Any],
    *,
    choices: Mapping[str, Sequence[Any]] | None = None,
    positive: Collection[str] = (),
    non_negative: Collection[str] = (),
) -> dict[str, Any]:
    """``params`` over ``defaults`` (a plain mapping of the task's defaults), every key and
    value checked against its default's type: an unknown key, a wrong type, a value outside
    ``choices[key]``, a non-positive value of a ``positive`` key or a negative one of a
    ``non_negative`` key raises :class:`ConfigError` naming the key. Integers count as
    floats; a list default takes a list of positive integers; a mapping default a mapping."""
    choices = choices or {}
    params = {} if params is None else params
    if not isinstance(params, Mapping):
        raise ConfigError(None, "<params>", f"must be a mapping, got {type(params).__name__}")
    out = dict(defaults)
    for key, value in params.items():
        if key not in defaults:
            raise ConfigError(None, str(key), f"unknown key (allowed: {', '.join(defaults)})")
        ref = defaults[key]
        if key in choices:
            if value not in choices[key]:
                raise ConfigError(None, key, f"must be one of {list(choices[key])}, got {value!r}")
        elif isinstance(ref, bool):
            if not isinstance(value, bool):
                raise ConfigError(None, key, f"must be true or false, got {value!r}")
        elif isinstance(ref, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(None, key, f"must be an integer, got {value!r}")
        elif isinstance(ref, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(None, key, f"must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ConfigError(None, key, f"must be finite, got {value!r}")
            value = float(value)
        elif isinstance(ref, Mapping) and not isinstance(value, Mapping):
            raise ConfigError(None, key, f"must be a mapping, got {type(value).__name__}")
        elif isinstance(ref, list) and (
            not isinstance(value, list)
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
        ):
            raise ConfigError(None, key, f"must be a list of positive integers, got {value!r}")
        if key in positive and value <= 0:
            raise ConfigError(None, key, f"must be > 0, got {value!r}")
        if key in non_negative and value < 0:
            raise ConfigError(None, key, f"must be >= 0, got {value!r}")
        out[key] = value
    return out
