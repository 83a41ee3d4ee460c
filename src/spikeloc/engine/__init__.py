"""The fast engine: the fused LIF recurrence behind one narrow interface (input currents in,
spikes and readouts out), its compiled CPU kernels and its GPU kernel, and the process-wide
runtime settings it applies. The autograd reference in :mod:`spikeloc.core.neurons` is the
oracle its tests hold it to; the engine imports nothing from :mod:`spikeloc.core`."""
