"""What a network's forward pass returns, and the spike-format helper both paths share.

Defined in the engine (the lowest layer that produces them) so that the model core can use the
engine without the engine importing the model core.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["SNNOutput", "as_float_spikes"]


class SNNOutput(NamedTuple):
    """``readout`` (batch, n_out): logits for classification, IPD estimate for regression;
    ``hidden_spikes`` (batch, T, n_hidden); ``output_v`` (batch, T, n_out) membrane trace of the
    output layer (spikes for the spike-count readout)."""

    readout: torch.Tensor
    hidden_spikes: torch.Tensor
    output_v: torch.Tensor


def as_float_spikes(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Spikes ``x`` (bool, uint8 or float) in ``dtype``; bool goes through a uint8 view (same
    values, ~9x cheaper than ``bool.to(float)``). Returns ``x`` itself when it has ``dtype``."""
    if x.dtype == dtype:
        return x
    return (x.view(torch.uint8) if x.dtype == torch.bool else x).to(dtype)
