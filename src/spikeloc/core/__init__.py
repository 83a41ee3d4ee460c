"""The model core: stimuli (IPDs, Poisson auditory-nerve input), the reference neurons (pure
step functions, units in seconds), networks built from a run config, training (loop, early
stopping, checkpoints, run directories) and evaluation (accuracy, both MAE definitions)."""
