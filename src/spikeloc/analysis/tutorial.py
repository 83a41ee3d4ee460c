"""Analyses of the tutorial's surrogate-gradient network (cosyne-tutorial-2022, notebook 3)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from spikeloc.analysis.basic_model import _np, hidden_order

__all__ = ["TutorialOrder", "weight_order_tutorial"]


class TutorialOrder(NamedTuple):
    """Two orderings of the hidden units: by output (``W2``) and by ear-signed input (``W1``)."""

    by_output: np.ndarray
    by_input: np.ndarray


def weight_order_tutorial(
    W1: torch.Tensor | np.ndarray,
    W2: torch.Tensor | np.ndarray,
    *,
    silent_threshold: float = 0.5,
) -> TutorialOrder:
    """Orderings of the hidden units used to make the tutorial's weight matrices readable.

    ``by_output``: :func:`hidden_order` of ``W2`` (the ``W2``-weighted mean class index,
    descending). ``by_input`` (the exercise's cell): ascending
    ``mean_i(A_i * W1[i, h])`` with the ear-signed index ``A = [0..N-1, -0..-(N-1)]`` (left ear
    positive, right ear negative); units whose ``max_i |W1[i, h]| < silent_threshold`` go last.
    """
    w1 = _np(W1)
    n = w1.shape[0] // 2
    a = np.concatenate([np.arange(n), -np.arange(w1.shape[0] - n)])[:, None]
    key = np.mean(a * w1, axis=0)
    key[np.max(np.abs(w1), axis=0) < silent_threshold] = np.inf
    return TutorialOrder(by_output=hidden_order(W2), by_input=np.argsort(key, kind="stable"))
