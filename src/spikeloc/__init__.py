"""spikeloc: spiking neural network models of sound localisation (COMOB reproduction).

Layers (each imports only from those above it in this list):
``stimuli`` -> ``neurons`` -> ``layers``/``models`` -> ``training`` -> ``evaluation``/``analysis``
-> ``plotting``, ``variables``, ``provenance``, ``authorship``, ``cli``.
"""

__version__ = "0.1.0"
