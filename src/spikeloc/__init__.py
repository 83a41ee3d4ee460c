"""spikeloc: spiking neural network models of sound localisation (COMOB reproduction).

The library in layers; each imports only from the layers above it in this list:

* base -- :mod:`spikeloc.errors` (one error style), :mod:`spikeloc.io` (atomic writes, model
  files), :mod:`spikeloc.provenance` (which code and machine made an artefact);
* :mod:`spikeloc.engine` -- the fast path: input currents in, spikes and readouts out;
* :mod:`spikeloc.core` -- the model core: stimuli, reference neurons, networks, run configs,
  training, evaluation;
* :mod:`spikeloc.analysis` -- analyses of trained networks and the figures they draw;
* :mod:`spikeloc.pipeline` -- the workflow's glue: manifests and sweeps, results loading,
  figures, variables and claims, the paper, authorship, scaffolding, the command handlers;
* :mod:`spikeloc.cli` -- the ``spikeloc`` command.
"""

__version__ = "0.1.0"
