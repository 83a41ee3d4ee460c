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
        super().__init__(f"{self.source}: {field}: {problem}")


class WeightsError(SpikelocError, ValueError):
    """A missing, unreadable or mismatched weights / checkpoint file."""

    def __init__(self, source: str | Path, field: str, problem: str):
        self.source = str(source)
        self.field = field
        self.problem = problem
        super().__init__(f"{self.source}: {field}: {problem}")
