"""Summaries of a sweep's table: a metric's mean and spread over seeds at each swept value.

A sweep table (``spikeloc.pipeline.results.load_sweep``) has one row per run: ``run``,
``path``, every swept key by its dotted name (``model.tau_hidden_s``), ``seed`` and the run's
metrics. :func:`mean_sd` reduces it to one row per grid point::

    table = results.load_sweep(sweeps["tau"])
    summary = sweep_stats.mean_sd(table, "accuracy")      # by every swept key
    #    model.tau_hidden_s   mean     sd  n
    # 0                0.01  0.412  0.021  2
    # 1                0.02  0.455  0.013  2
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["SWEPT_KEY_RE", "mean_sd", "swept_columns"]

#: Columns holding swept values: run-config keys written block.field (metrics never have a dot).
SWEPT_KEY_RE = re.compile(r"^(stimulus|model|training)(\.[a-z][a-z0-9_]*)+$")


def sample_sd(values: Sequence[float]) -> float:
    """Standard deviation between runs (ddof 1); 0 for a single run."""
    import numpy as np

    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def swept_columns(table: Any) -> list[str]:
    """The swept keys of a sweep table (its dotted column names), in table order."""
    return [str(c) for c in table.columns if SWEPT_KEY_RE.match(str(c))]


def mean_sd(table: Any, metric: str, by: str | Sequence[str] | None = None):
    """Mean, sample standard deviation (``ddof=1``; NaN for a single run) and count of
    ``metric`` over the runs (seeds) of each distinct value of ``by``.

    ``by``: a column or columns (default: every swept column). Returns a pandas DataFrame with
    the ``by`` columns, ``mean``, ``sd`` and ``n``, sorted by ``by``. Rows whose metric is
    missing (NaN) are left out of the mean and the count. Raises ``KeyError`` naming the
    column for a metric or key the table does not have, ``ValueError`` for a non-numeric
    metric or a table without swept columns when ``by`` is not given.
    """
    import pandas as pd

    keys = [by] if isinstance(by, str) else list(by) if by is not None else swept_columns(table)
    if not keys:
        raise ValueError("mean_sd: the table has no swept columns (block.field); pass `by`")
    for column in [*keys, metric]:
        if column not in table.columns:
            known = ", ".join(map(str, table.columns))
            raise KeyError(f"mean_sd: no column {column!r} in the sweep table (known: {known})")
    try:
        values = pd.to_numeric(table[metric])
    except (TypeError, ValueError):
        raise ValueError(f"mean_sd: metric {metric!r} is not numeric") from None
    frame = table[keys].copy()
    frame["_value"] = values.astype(float)
    rows = []
    for point, group in frame.groupby(keys, sort=True, dropna=False):
        point = point if isinstance(point, tuple) else (point,)
        v = group["_value"].to_numpy(dtype=np.float64)
        v = v[~np.isnan(v)]
        n = int(v.size)
        mean = float(v.mean()) if n else float("nan")
        sd = float(v.std(ddof=1)) if n > 1 else float("nan")
        rows.append({**dict(zip(keys, point, strict=True)), "mean": mean, "sd": sd, "n": n})
    return pd.DataFrame(rows, columns=[*keys, "mean", "sd", "n"])
