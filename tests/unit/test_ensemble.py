"""Ensembles: each member ends where the same run trained alone ends.

The bound: the ensemble computes each member's numbers in the same operations as alone (the
shared table look-up sums the same partial sums per column, stacked kernel rows are
independent, Adam updates each tensor on its own), so the weights are held to a relative 1e-5
(float32 rounding) and, in practice, agree bit for bit; metrics of whole runs must agree.
"""

from __future__ import annotations

import json

import pytest
import torch

from spikeloc.core.config import config_from_dict
from spikeloc.core.ensemble import (
    ensemble_key,
    group_for_ensembles,
    train_ensemble,
    train_ensemble_runs,
)
from spikeloc.core.training import train, train_run

SMALL = {"epochs": 2, "n_train": 256, "n_test": 128, "batch_size": 32}


def cfg(seed=0, model=None, training=None, stimulus=None, preset="tutorial"):
    return config_from_dict(
        {
            "preset": preset,
            "seed": seed,
            "device": "cpu",
            "model": model or {},
            "training": {**SMALL, **(training or {})},
            "stimulus": stimulus or {},
        }
    )


def assert_same_weights(alone, member, rel=1e-5):
    for name in ("W1", "W2"):
        a = getattr(alone, name).detach()
        b = getattr(member, name).detach()
        scale = float(a.abs().max())
        assert float((a - b).abs().max()) <= rel * scale, name
    for name in ("sign1", "sign2"):
        a, b = getattr(alone, name), getattr(member, name)
        assert (a is None and b is None) or torch.equal(a, b), name


# every per-member value of the issue: seed (init, data, shuffling), time constants, Dale
# fraction, noise level, dropout probability, regulariser weight, learning rate, threshold
MEMBERS = {
    "seed": cfg(seed=1),
    "shared_data_other_tau": cfg(model={"tau_hidden_s": 0.01}),
    "tau_output": cfg(model={"tau_output_s": 0.005}),
    "dale_fraction": cfg(model={"dale": {"enabled": True, "inhibitory_fraction": 0.3}}),
    "noise": cfg(seed=2, stimulus={"phase_delay_noise_rad": 0.3}),
    "dropout": cfg(seed=3, model={"dropout": 0.2}),
    "regulariser": cfg(training={"regulariser": {"enabled": True, "strength": 0.5}}),
    "learning_rate": cfg(seed=4, training={"lr": 0.003}),
    "threshold": cfg(model={"threshold": 0.8}),
    "plain": cfg(),
}


def test_every_member_ends_where_it_would_alone():
    cfgs = list(MEMBERS.values())
    assert len(group_for_ensembles(cfgs)) == 1, "all members share one ensemble key"
    results, _ = train_ensemble(cfgs, progress=False)
    for (name, c), member in zip(MEMBERS.items(), results, strict=True):
        alone = train(c, progress=False)
        assert_same_weights(alone.model, member.model)
        losses = [h["train_loss"] for h in alone.history]
        assert [h["train_loss"] for h in member.history] == pytest.approx(losses, rel=1e-6), name


def test_regression_members():
    cfgs = [cfg(model={"readout": "regression"}), cfg(seed=1, model={"readout": "regression"})]
    results, _ = train_ensemble(cfgs, progress=False)
    for c, member in zip(cfgs, results, strict=True):
        assert_same_weights(train(c, progress=False).model, member.model)


def test_early_stopping_and_best_weights_per_member():
    es = {"epochs": 6, "n_val": 128, "early_stopping": True, "patience": 2, "min_epochs": 1}
    cfgs = [cfg(training={**es, "lr": 0.05}), cfg(seed=1, training={**es, "lr": 0.001})]
    results, _ = train_ensemble(cfgs, progress=False)
    for c, member in zip(cfgs, results, strict=True):
        alone = train(c, progress=False)
        assert member.epochs_run == alone.epochs_run
        assert member.best_epoch == alone.best_epoch
        assert member.stopped_early == alone.stopped_early
        assert [h["val_loss"] for h in member.history] == pytest.approx(
            [h["val_loss"] for h in alone.history], rel=1e-6
        )
        assert_same_weights(alone.model, member.model)  # the best epoch's weights


def test_run_directories_as_if_trained_alone(tmp_path):
    cfgs = [cfg(), cfg(seed=1, model={"tau_hidden_s": 0.01})]
    dirs = [tmp_path / "ens" / "a", tmp_path / "ens" / "b"]
    together = train_ensemble_runs(cfgs, dirs, progress=False, provenance=[{"x": 1}, None])
    for c, d, m in zip(cfgs, dirs, together, strict=True):
        alone = train_run(c, tmp_path / "alone" / d.name, progress=False)
        for key in ("accuracy", "mae_midpoint_deg", "train_accuracy", "hidden_rates_hz"):
            assert m[key] == pytest.approx(alone[key], rel=1e-6), key
        files = sorted(p.name for p in d.iterdir())
        assert files == sorted(p.name for p in (tmp_path / "alone" / d.name).iterdir())
        prov = json.loads((d / "provenance.json").read_text())
        assert prov["ensemble"]["size"] == 2
    assert json.loads((dirs[0] / "provenance.json").read_text())["x"] == 1


@pytest.mark.parametrize(
    "change",
    [
        {"model": {"readout": "max_membrane"}},
        {"model": {"readout": "spike_count"}},
        {"model": {"architecture": "membrane_only"}},
    ],
)
def test_what_cannot_be_an_ensemble_trains_alone(change):
    assert ensemble_key(cfg(**change)) is None
    ref = config_from_dict({**cfg().to_dict(), "backend": "reference"})
    assert ensemble_key(ref) is None


def test_shapes_and_schedules_split_ensembles():
    cfgs = [cfg(), cfg(model={"n_hidden": 16}), cfg(seed=1), cfg(training={"epochs": 3})]
    assert group_for_ensembles(cfgs) == [[0, 2], [1], [3]]
    with pytest.raises(ValueError, match="one ensemble key"):
        train_ensemble([cfgs[0], cfgs[1]], progress=False)


def test_a_chunk_trains_its_compatible_runs_as_one_ensemble(tmp_path):
    from spikeloc.pipeline import chunks as ch
    from spikeloc.pipeline import sweeps as sw

    manifest = {
        "sweeps": {
            "tau": {
                "preset": "tutorial",
                "overrides": {"training": SMALL},
                "grid": {
                    "model.tau_hidden_s": [0.01, 0.02],
                    "model.readout": ["mean_membrane", "max_membrane"],
                },
            }
        }
    }
    rows = {}
    for mode in (True, False):
        root = tmp_path / str(mode)
        runs = sw.expand_module("demo", manifest, "paper", root=str(root))[1]["tau"]
        spec = tmp_path / f"{mode}.json"
        spec.write_text(ch.spec_text(sw.chunks("demo", "tau", runs, 8)[0], "code"))
        said = []
        result = ch.train_chunk(
            spec,
            tmp_path / f"r{mode}.json",
            device="cpu",
            progress=False,
            ensemble=mode,
            say=said.append,
        )
        assert result["trained"] == 4
        assert any("as one ensemble" in s for s in said) == mode
        rows[mode] = result["rows"]
    # the same numbers bit for bit (here; the bound is float rounding), apart from wall times
    drop = ("path", "train_wall_s", "data_wall_s")
    for a, b in zip(rows[True], rows[False], strict=True):
        assert {k: v for k, v in a.items() if k not in drop} == {
            k: v for k, v in b.items() if k not in drop
        }


@pytest.mark.parametrize("order", ["published", "immediate"])
@pytest.mark.parametrize("n", [5, 16])  # the loop kernel and the lane-block kernel
def test_parameter_table_rows_compute_each_member_as_alone(order, n):
    """One kernel call over three members' stacked rows, each with its own values (time
    constant, threshold, surrogate beta, adaptation), equals each member's call alone bit for
    bit, forward (spikes, records, readout sum) and adjoint."""
    import numpy as np

    from spikeloc.engine import LIFSpec, cpu_kernels

    if not cpu_kernels.available():
        pytest.skip("numba not installed")
    specs = [
        LIFSpec(alpha=a, threshold=th, order=order, beta=b, adaptive_beta=ab, rho=r)
        for a, th, b, ab, r in [(0.9, 1.0, 5.0, 0.2, 0.95), (0.6, 0.8, 3.0, 0.5, 0.8),
                                (0.97, 1.2, 8.0, 0.1, 0.5)]
    ]  # fmt: skip
    rng = np.random.default_rng(0)
    B, T = 6, 40
    h = (rng.standard_normal((3 * B, T, n)) * 0.6 + 0.25).astype(np.float32)
    G = rng.standard_normal(h.shape).astype(np.float32)
    c = rng.random(T).astype(np.float32)
    gr = rng.standard_normal((3 * B, n)).astype(np.float32)
    table = cpu_kernels.params_table(specs, np.float32)
    S, X, U, R = cpu_kernels.lif_forward(h, specs[0], c, table)
    Y = 1 / (1 + np.exp(-X))
    dh = cpu_kernels.lif_backward(G, Y, S, U, specs[0], c, gr, table)
    assert S.sum() > 0
    for e, spec in enumerate(specs):
        rows = slice(e * B, (e + 1) * B)
        S1, X1, U1, R1 = cpu_kernels.lif_forward(np.ascontiguousarray(h[rows]), spec, c)
        np.testing.assert_array_equal(S[rows], S1)
        np.testing.assert_array_equal(X[rows], X1)
        np.testing.assert_array_equal(R[rows], R1)
        dh1 = cpu_kernels.lif_backward(
            np.ascontiguousarray(G[rows]), np.ascontiguousarray(Y[rows]), S1, U1, spec, c,
            np.ascontiguousarray(gr[rows]),
        )  # fmt: skip
        np.testing.assert_array_equal(dh[rows], dh1)
    with pytest.raises(ValueError, match="option flags"):
        cpu_kernels.params_table([specs[0], LIFSpec(alpha=0.9, threshold=1.0)], np.float32)
    with pytest.raises(ValueError, match="split"):
        cpu_kernels.lif_forward(h[:-1], specs[0], c, table)
