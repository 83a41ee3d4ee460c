"""Analyses of trained networks (per-study code beside shared tools) and the figures they draw.
Nothing here trains: a notebook loads runs (:mod:`spikeloc.pipeline.results`) and calls these."""
