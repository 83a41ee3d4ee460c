"""The training-time hidden-spike recording hook (training.record_hidden_spikes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeloc.core import ensemble
from spikeloc.core.config import config_from_dict, config_hash
from spikeloc.core.models import build_model
from spikeloc.core.recording import SpikeRecorder, load_recording
from spikeloc.core.training import make_datasets, seeded_generator, train, train_run


def _cfg(record: bool, **training):
    return config_from_dict(
        {
            "name": "rec",
            "preset": "tutorial",
            "device": "cpu",
            "seed": 3,
            "model": {"n_hidden": 11},  # not a multiple of 8: the bit packing pads
            "training": {
                "epochs": 2, "n_train": 96, "n_test": 32, "batch_size": 32,
                "record_hidden_spikes": record, **training,
            },
        }
    )


def test_recorder_round_trips_bits_exactly(tmp_path):
    g = torch.Generator().manual_seed(0)
    rec = SpikeRecorder()
    batches = [(torch.rand(5, 7, 13, generator=g) < 0.3).float() for _ in range(3)]
    for k, s in enumerate(batches):
        rec(k + 1, s, torch.arange(5), torch.linspace(-1, 1, 5))
    r = load_recording(rec.save(tmp_path / "x.npz"))
    assert r.bits.dtype == np.uint8 and r.bits.shape == (15, 7, 2)
    np.testing.assert_array_equal(r.spikes(), torch.cat(batches).numpy())
    np.testing.assert_array_equal(r.epoch, np.repeat([1, 2, 3], 5))
    other = SpikeRecorder()
    other.load_state(rec.state())
    np.testing.assert_array_equal(other.recording().bits, r.bits)


def test_recorded_spikes_are_the_models_spikes_on_the_batches_it_saw():
    # the first batch ran through the initial weights: recompute it from the run's seed
    cfg = _cfg(True)
    data = make_datasets(cfg, torch.device("cpu"))
    res = train(cfg, progress=False, datasets=data)
    r = res.recording.recording()
    assert len(r) == 2 * 96 and r.n_hidden == 11
    np.testing.assert_array_equal(r.epoch, np.repeat([1, 2], 96))
    train_ipd = data["train"].ipd.numpy().astype(np.float32)
    idx = np.array([int(np.flatnonzero(train_ipd == v)[0]) for v in r.ipd])
    # every epoch sees every sample once, in a new shuffled order
    assert sorted(idx[:96]) == list(range(96)) and list(idx[:96]) != list(idx[96:])
    np.testing.assert_array_equal(r.labels, data["train"].labels.numpy()[idx])
    model0 = build_model(cfg, generator=seeded_generator(cfg.seed, "model"))
    with torch.no_grad():
        out = model0(data["train"].spikes[torch.as_tensor(idx[:32])])
    np.testing.assert_array_equal(r.spikes(slice(0, 32)), out.hidden_spikes.numpy())
    assert r.spikes().sum() > 0


def test_recording_changes_nothing_else_and_is_off_by_default(tmp_path):
    on, off = _cfg(True), _cfg(False)
    a = train(on, progress=False)
    b = train(off, progress=False)
    assert b.recording is None
    for k in ("W1", "W2"):
        torch.testing.assert_close(getattr(a.model, k), getattr(b.model, k), rtol=0, atol=0)
    # the hash of a run that does not record is the hash it had before the option existed
    d = off.to_dict()
    assert "record_hidden_spikes" in d["training"]
    assert config_hash(off) != config_hash(on)
    train_run(off, tmp_path / "off", progress=False)
    assert not (tmp_path / "off" / "hidden_spikes.npz").exists()
    train_run(on, tmp_path / "on", progress=False)
    assert len(load_recording(tmp_path / "on")) == 2 * 96


def test_recording_survives_a_resume(tmp_path):
    cfg = _cfg(True)
    full = train(cfg, progress=False).recording.recording()
    ck = tmp_path / "ck.pt"
    import spikeloc.core.training as T

    calls = []

    def stop(e, row):
        calls.append(e)
        if e == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        T.train(cfg, progress=False, checkpoint_path=ck, on_epoch_end=stop)
    resumed = T.train(cfg, progress=False, checkpoint_path=ck, resume=True)
    r = resumed.recording.recording()
    np.testing.assert_array_equal(r.bits, full.bits)
    np.testing.assert_array_equal(r.ipd, full.ipd)


def test_recording_runs_train_alone_not_as_ensemble_members():
    cfgs = [_cfg(False), _cfg(True), _cfg(False)]
    assert ensemble.ensemble_key(cfgs[1]) is None
    assert ensemble.group_for_ensembles(cfgs) == [[0, 2], [1]]


def test_on_batch_end_sees_every_batch():
    seen = []
    train(_cfg(False), progress=False,
          on_batch_end=lambda e, out, y, ipd: seen.append((e, tuple(out.hidden_spikes.shape))))
    assert seen == [(1, (32, 100, 11))] * 3 + [(2, (32, 100, 11))] * 3
