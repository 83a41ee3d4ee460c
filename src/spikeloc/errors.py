"""Exceptions for bad user input: each names the file and the field it is about."""

from __future__ import annotations

from pathlib import Path


class SpikelocError(Exception):
    """A user-facing error; the CLI prints ``str(exc)`` on one line and exits with code 2."""


class ConfigError(SpikelocError, ValueError):
    """A bad configuration value or key.

    ``ConfigError("run.yaml", "model.tau_s", "must be > 0, got -1")`` renders as
    ``run.yaml: model.tau_s: must be > 0, got -1``.
    """

    def __init__(self, source: str | Path | None, field: str, problem: str):
        self.source = str(source) if source is not None else "<config>"
        self.field = field
        self.problem = problem
        self.problems = [self]
        super().__init__(f"{self.source}: {field}: {problem}")

    @classmethod
    def combine(cls, errors: list[ConfigError]) -> ConfigError:
        """One error for several problems of one file: one ``file: field: problem`` line each
        (``field``/``problem`` are the first's; ``problems`` holds them all)."""
        first = errors[0]
        combined = cls(first.source, first.field, first.problem)
        combined.problems = list(errors)
        combined.args = ("\n".join(str(e) for e in errors),)
        return combined

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else super().__str__()


class WeightsError(SpikelocError, ValueError):
    """A missing, unreadable or mismatched weights / checkpoint file."""

    def __init__(self, source: str | Path, field: str, problem: str):
        self.source = str(source)
        self.field = field
        self.problem = problem
        super().__init__(f"{self.source}: {field}: {problem}")
