"""Fused layers (hand-written BPTT). Placeholder until the fused path lands: reference only."""

from __future__ import annotations


def supports(model) -> bool:  # noqa: ARG001
    return False


def fused_forward(model, x, w1, w2, *, dropout_generator=None):  # pragma: no cover
    raise NotImplementedError
