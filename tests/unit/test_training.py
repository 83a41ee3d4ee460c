"""Training: learning at quick scale, seeded determinism, kill-and-resume, run directory."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from spikeloc.core.config import RegulariserConfig, config_from_dict
from spikeloc.core.training import (
    _early_stop,
    regulariser_loss,
    resolve_device,
    train,
    train_run,
)
from spikeloc.errors import ConfigError


def quick_cfg(**training):
    base = {"n_train": 512, "n_test": 256, "batch_size": 64, "epochs": 3}
    base.update(training)
    return config_from_dict(
        {
            "preset": "tutorial",
            "seed": 3,
            "device": "cpu",
            "stimulus": {"phase_offset": "per_sample", "anf_per_ear": 50},
            "model": {
                "n_inputs": 100,
                "n_hidden": 16,
                "tau_hidden_s": 0.005,
                "tau_output_s": 0.005,
            },
            "training": base,
        }
    )


def test_training_lowers_loss_and_beats_chance(tmp_path):
    cfg = quick_cfg(n_train=1024, n_test=512, epochs=4)
    metrics = train_run(cfg, tmp_path / "run", progress=False)
    hist = list(csv.DictReader(open(tmp_path / "run" / "history.csv")))
    losses = [float(r["train_loss"]) for r in hist]
    assert losses[-1] < losses[0] - 0.3
    assert metrics["accuracy"] > 2.5 / 12  # chance is 1/12
    assert metrics["train_accuracy"] > 2.5 / 12


def test_seeded_runs_repeat_exactly_on_cpu():
    a = train(quick_cfg(epochs=2), progress=False).model
    b = train(quick_cfg(epochs=2), progress=False).model
    assert torch.equal(a.W1, b.W1) and torch.equal(a.W2, b.W2)
    c = train(config_from_dict({**quick_cfg(epochs=2).to_dict(), "seed": 4}), progress=False).model
    assert not torch.equal(a.W1, c.W1)


class Killed(Exception):
    pass


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"data": "fresh"},
        {"n_val": 128, "early_stopping": True, "patience": 2, "min_epochs": 1},
    ],
)
def test_kill_and_resume_gives_the_same_final_weights(tmp_path, extra):
    epochs = 4
    ref_cfg = quick_cfg(epochs=epochs, **extra)
    cfg = config_from_dict(
        {**ref_cfg.to_dict(), "model": {**ref_cfg.to_dict()["model"], "dropout": 0.2}}
    )
    reference = train(cfg, progress=False).model

    ckpt = tmp_path / "checkpoint.pt"

    def kill_after_two(epoch, row):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        train(cfg, checkpoint_path=ckpt, progress=False, on_epoch_end=kill_after_two)
    assert ckpt.exists()
    resumed = train(cfg, checkpoint_path=ckpt, resume=True, progress=False)
    assert torch.equal(resumed.model.W1, reference.W1)
    assert torch.equal(resumed.model.W2, reference.W2)


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    train(quick_cfg(epochs=1), checkpoint_path=ckpt, progress=False)
    from spikeloc.errors import ConfigError

    with pytest.raises(ConfigError, match="config_hash"):
        train(quick_cfg(epochs=2, lr=0.5), checkpoint_path=ckpt, resume=True, progress=False)


def test_cli_resume_after_kill_matches_uninterrupted_run(tmp_path):
    cfg = quick_cfg(epochs=3)
    full = train_run(cfg, tmp_path / "full", progress=False)
    ckpt = tmp_path / "part.partial" / "checkpoint.pt"
    ckpt.parent.mkdir()

    def kill(epoch, row):
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        train(cfg, checkpoint_path=ckpt, progress=False, on_epoch_end=kill)
    assert not (tmp_path / "part").exists()  # nothing half-written in the final place
    resumed = train_run(cfg, tmp_path / "part", resume=True, progress=False)
    a = torch.load(tmp_path / "full" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "part" / "model.pt", weights_only=True)["state_dict"]
    assert torch.equal(a["W1"], b["W1"]) and torch.equal(a["W2"], b["W2"])
    assert resumed["accuracy"] == full["accuracy"]
    assert not (tmp_path / "part.partial").exists()


def test_run_directory_contents(tmp_path):
    cfg = quick_cfg(epochs=1)
    train_run(cfg, tmp_path / "r", progress=False)
    files = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert files == ["config.yaml", "history.csv", "metrics.json", "model.pt", "provenance.json"]
    model = torch.load(tmp_path / "r" / "model.pt", weights_only=True)
    assert model["format"] == "spikeloc-model/1"
    assert model["config"]["model"]["n_hidden"] == 16
    assert set(model["state_dict"]) == {"W1", "W2"}
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    for key in ("accuracy", "mae_midpoint_deg", "mae_continuous_deg", "hidden_rates_hz", "device"):
        assert key in metrics
    prov = json.loads((tmp_path / "r" / "provenance.json").read_text())
    for key in ("git", "packages", "config_hash", "seed", "device"):
        assert key in prov
    assert prov["seed"] == 3 and prov["device"] == "cpu"
    assert prov["packages"]["torch"] == torch.__version__.split("+")[0] or prov["packages"]["torch"]


def test_regulariser_code_form_has_the_extra_one_over_nh():
    spikes = torch.zeros(10, 100, 4)
    spikes[:, ::4, 0] = 1  # 250 Hz
    spikes[:, ::6, 1] = 1  # ~170 Hz
    reg = RegulariserConfig(enabled=True)
    code = regulariser_loss(spikes, reg, 12, 0.1)
    paper = regulariser_loss(spikes, RegulariserConfig(enabled=True, form="paper"), 12, 0.1)
    assert float(paper) == pytest.approx(4 * float(code))  # N_h = 4
    fr0, fr1 = 250.0, 17 * 10 / 0.1 / 10
    c = math.log(12)
    want = c * (min(1e9, (fr0 - 100) / 100) ** 2 + ((fr1 - 100) / 100) ** 2) / 4 / 4
    assert float(code) == pytest.approx(want, rel=1e-6)


def _rule(patience, min_epochs, rule="oldest_is_min", level=70.0):
    from types import SimpleNamespace

    return SimpleNamespace(
        patience=patience,
        min_epochs=min_epochs,
        early_stopping_rule=rule,
        early_stopping_level=level,
    )


def test_early_stopping_rule():
    # stop when the oldest of the last `patience` losses is their minimum, after min_epochs
    assert not _early_stop([3, 2, 1, 0.9, 1.6], epoch=5, tr=_rule(3, 2))
    assert _early_stop([3, 2, 1, 1.5, 1.6], epoch=5, tr=_rule(3, 2))
    assert _early_stop([3, 1, 1.5, 1.6], epoch=4, tr=_rule(3, 2))
    assert not _early_stop([3, 1, 1.5, 1.6], epoch=4, tr=_rule(3, 4))


def test_the_250hz_early_stopping_rule_is_a_level_on_the_mean():
    # Quick_Start_250HzClassification: mean of the last 10 losses >= 70 and e > 10
    losses = [2.4] * 12
    assert not _early_stop(losses, epoch=12, tr=_rule(10, 10, "mean_at_least"))
    assert _early_stop([2.4] * 2 + [70.0] * 10, epoch=12, tr=_rule(10, 10, "mean_at_least"))
    assert not _early_stop([70.0] * 10, epoch=10, tr=_rule(10, 10, "mean_at_least"))  # e > 10
    assert _early_stop([1.0, 3.0], epoch=5, tr=_rule(2, 1, "mean_at_least", level=2.0))


def test_restore_best_false_keeps_the_last_weights():
    """The 250 Hz notebook's rule never fires at a mean NLL of ~2.5 and its 'best' weights
    alias the live ones: its runs end with the last epoch's weights, as without early stopping."""
    base = dict(epochs=3, n_val=64)
    plain = train(quick_cfg(**base), progress=False)
    quirk = train(
        quick_cfg(
            **base,
            early_stopping=True,
            patience=2,
            min_epochs=1,
            early_stopping_rule="mean_at_least",
            restore_best=False,
        ),
        progress=False,
    )
    assert quirk.epochs_run == 3 and not quirk.stopped_early
    for k, v in plain.model.state_dict().items():
        assert torch.equal(v, quirk.model.state_dict()[k]), k


def test_early_stopping_returns_best_validation_weights():
    cfg = quick_cfg(epochs=6, n_val=128, early_stopping=True, patience=2, min_epochs=1)
    res = train(cfg, progress=False)
    assert res.best_epoch is not None
    vals = [h["val_loss"] for h in res.history]
    assert vals[res.best_epoch - 1] == min(vals)


def test_device_cuda_without_gpu_fails_at_once():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from spikeloc.errors import SpikelocError

    with pytest.raises(SpikelocError, match="no CUDA GPU"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_extra_test_sets_are_fresh_draws_with_the_published_error_bar(tmp_path):
    """training.n_test_sets (Optimizing-Membrane-Time-Constant: 10 sets of 4096): set 0 is the
    run's test set, the others fresh and reproducible; sem = sd (ddof 0) / sqrt(n)."""
    import numpy as np

    from spikeloc.core.training import make_test_set, train_run

    cfg = quick_cfg(epochs=1, n_train=128, n_test=64, n_test_sets=3)
    m = train_run(cfg, tmp_path / "run", progress=False)
    acc = m["test_sets_accuracy"]
    assert len(acc) == 3 and acc[0] == m["accuracy"]
    assert m["test_sets_accuracy_mean"] == pytest.approx(np.mean(acc))
    assert m["test_sets_accuracy_sem"] == pytest.approx(np.std(acc) / np.sqrt(3))
    sets = [make_test_set(cfg, index=k) for k in range(3)]
    assert not torch.equal(sets[0].ipd, sets[1].ipd) and not torch.equal(sets[1].ipd, sets[2].ipd)
    assert torch.equal(make_test_set(cfg, index=2).spikes, sets[2].spikes)
    one = quick_cfg(epochs=1, n_train=128, n_test=64)
    assert torch.equal(make_test_set(one).spikes, sets[0].spikes)  # set 0 unchanged


@pytest.mark.parametrize(
    "training,problem",
    [
        ({"n_test_sets": 0}, "must be > 0"),
        ({"n_test_sets": 900}, "must be < 900"),
        ({"n_test_sets": 2, "legacy_numpy_seed": 5}, "must be 1 with legacy_numpy_seed"),
    ],
)
def test_bad_test_set_counts_are_refused(training, problem):
    with pytest.raises(ConfigError, match=problem) as exc:
        config_from_dict({"preset": "tutorial", "training": training}, "run.yaml")
    assert exc.value.field == "training.n_test_sets"
