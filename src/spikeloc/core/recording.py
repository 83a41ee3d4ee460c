"""Recording the hidden spikes of every training batch (``training.record_hidden_spikes``).

Off by default; when off the training loop pays one ``is None`` test per batch. When on,
:class:`SpikeRecorder` keeps each batch's hidden spikes as packed bits (``np.packbits`` along
the neuron axis: 40 960 trials x 100 steps x 30 neurons take 15 MB instead of 1 GB of
float64) with the batch's class labels, IPDs and epoch, and the run directory gets
``hidden_spikes.npz``. Trials are in the order training saw them (epoch by epoch, batch by
batch, each batch in its shuffled order). Runs that record train alone, never as an ensemble
member (:func:`spikeloc.core.ensemble.ensemble_key` is None for them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spikeloc.io import atomic_write_bytes

__all__ = ["SpikeRecorder", "SpikeRecording", "load_recording", "RECORDING_FILE"]

RECORDING_FILE = "hidden_spikes.npz"


@dataclass(frozen=True)
class SpikeRecording:
    """A recording read back: ``bits`` (trials, T, ceil(H/8)) uint8, and per trial ``labels``,
    ``ipd`` (rad) and ``epoch`` (1-based)."""

    bits: np.ndarray
    labels: np.ndarray
    ipd: np.ndarray
    epoch: np.ndarray
    n_hidden: int

    def __len__(self) -> int:
        return int(self.bits.shape[0])

    def spikes(self, index=slice(None), dtype=np.float32) -> np.ndarray:
        """Spikes of the selected trials, (trials, T, H), unpacked in one vectorised call."""
        sel = self.bits[index]
        return np.unpackbits(sel, axis=-1, count=self.n_hidden).astype(dtype, copy=False)


class SpikeRecorder:
    """Collects ``(epoch, hidden spikes, labels, ipd)`` of each training batch as bits."""

    def __init__(self) -> None:
        self._bits: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._ipd: list[np.ndarray] = []
        self._epoch: list[np.ndarray] = []
        self.n_hidden: int | None = None

    def __call__(
        self, epoch: int, hidden_spikes: torch.Tensor, labels: torch.Tensor, ipd: torch.Tensor
    ) -> None:
        s = hidden_spikes.detach().to("cpu") > 0.5  # (batch, T, H), exact 0/1 values
        self.n_hidden = int(s.shape[-1])
        self._bits.append(np.packbits(s.numpy(), axis=-1))
        self._labels.append(labels.detach().cpu().numpy().astype(np.int16))
        self._ipd.append(ipd.detach().cpu().numpy().astype(np.float32))
        self._epoch.append(np.full(len(s), epoch, dtype=np.int16))

    def __len__(self) -> int:
        return sum(len(b) for b in self._bits)

    def recording(self) -> SpikeRecording:
        if not self._bits:
            raise ValueError("no batches were recorded")
        return SpikeRecording(
            bits=np.concatenate(self._bits),
            labels=np.concatenate(self._labels),
            ipd=np.concatenate(self._ipd),
            epoch=np.concatenate(self._epoch),
            n_hidden=int(self.n_hidden),
        )

    # checkpoints: the state as plain tensors (torch.load(..., weights_only=True) reads it)
    def state(self) -> dict:
        if not self._bits:
            return {"n_hidden": -1}
        r = self.recording()
        return {
            "n_hidden": r.n_hidden,
            "bits": torch.from_numpy(r.bits),
            "labels": torch.from_numpy(r.labels),
            "ipd": torch.from_numpy(r.ipd),
            "epoch": torch.from_numpy(r.epoch),
        }

    def load_state(self, state: dict) -> None:
        self.__init__()
        if int(state["n_hidden"]) < 0:
            return
        self.n_hidden = int(state["n_hidden"])
        for key, dest in (
            ("bits", self._bits),
            ("labels", self._labels),
            ("ipd", self._ipd),
            ("epoch", self._epoch),
        ):
            dest.append(state[key].numpy())

    def save(self, path: str | Path) -> Path:
        """Write ``hidden_spikes.npz`` atomically (compressed)."""
        import io

        r = self.recording()
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            bits=r.bits,
            labels=r.labels,
            ipd=r.ipd,
            epoch=r.epoch,
            n_hidden=np.int64(r.n_hidden),
        )
        return atomic_write_bytes(path, buf.getvalue())


def load_recording(path: str | Path) -> SpikeRecording:
    """Read a recording (a run directory or its ``hidden_spikes.npz``)."""
    path = Path(path)
    if path.is_dir():
        path = path / RECORDING_FILE
    if not path.is_file():
        from spikeloc.errors import SpikelocError

        raise SpikelocError(
            f"{path}: no such file; train the run with training.record_hidden_spikes: true"
        )
    with np.load(path) as z:
        return SpikeRecording(
            bits=z["bits"],
            labels=z["labels"],
            ipd=z["ipd"],
            epoch=z["epoch"],
            n_hidden=int(z["n_hidden"]),
        )
