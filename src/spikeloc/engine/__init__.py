"""The fast engine: the fused LIF recurrence behind one narrow interface (input currents in,
spikes and readouts out: :func:`run_lif`), its compiled CPU kernels and its GPU kernel, all
generated from one specification of the LIF family's update (:mod:`spikeloc.engine.lif_spec`),
and the process-wide runtime settings it applies. The autograd reference in
:mod:`spikeloc.core.neurons` is the oracle its tests hold it to; the engine imports nothing
from :mod:`spikeloc.core`."""

from spikeloc.engine.layers import (
    Readout,
    SpikeInput,
    ensure_runtime,
    lif_sequence,
    run_lif,
    unsupported,
)
from spikeloc.engine.lif_spec import LIFSpec

__all__ = [
    "LIFSpec",
    "Readout",
    "SpikeInput",
    "ensure_runtime",
    "lif_sequence",
    "run_lif",
    "unsupported",
]
