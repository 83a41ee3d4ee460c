"""spikeloc.analysis.tca: preprocessing, the restarts quirk, correlations and clustering."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from spikeloc.analysis import tca
from spikeloc.core.recording import SpikeRecorder

tt = pytest.importorskip("tensortools")


def test_smoothing_matches_the_notebooks_per_trial_per_neuron_calls():
    rng = np.random.default_rng(1)
    s = (rng.random((4, 100, 5)) < 0.2).astype(np.float32)  # trials, T, neurons
    X = tca.smooth_tensor(s, sigma=2)
    assert X.shape == (4, 5, 100)
    for i in range(4):
        for j in range(5):
            np.testing.assert_allclose(X[i, j], gaussian_filter1d(s[i, :, j].astype(float), 2),
                                       rtol=0, atol=1e-15)


def test_training_tensor_takes_every_nth_recorded_trial_with_its_class_midpoint():
    import torch

    rec = SpikeRecorder()
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(12).repeat(10)
    s = (torch.rand(120, 100, 30, generator=g) < 0.1).float()
    rec(1, s, labels, torch.zeros(120))
    X, colour = tca.training_tensor(rec.recording(), every=50)
    assert X.shape == (3, 30, 100)  # trials 0, 50, 100
    np.testing.assert_allclose(X, tca.smooth_tensor(s.numpy()[[0, 50, 100]]))
    mid = (labels.numpy()[[0, 50, 100]] + 0.5) * np.pi / 12 - np.pi / 2
    np.testing.assert_allclose(colour, mid, rtol=1e-6)


def _planted(n=40, k=8, t=50, seed=0):
    rng = np.random.default_rng(seed)
    u, v = rng.random(n) + 0.5, rng.random(k)
    w = np.exp(-0.5 * ((np.arange(t) - 20) / 3.0) ** 2)
    return np.einsum("i,j,t->ijt", u, v, w) + 0.01 * rng.random((n, k, t))


def test_last_restart_is_what_the_library_returns_and_best_is_the_lowest_loss():
    from tensortools.cpwarp import fit_shifted_cp

    X = _planted()
    ours = tca.fit_shifted(X, 2, n_restarts=3, max_iter=20, seed=5)
    tca._seed_all(5)  # numpy's stream and numba's own
    lib = fit_shifted_cp(X, 2, n_restarts=3, boundary="wrap", max_shift_axis0=0.15,
                         max_iter=20, u_nonneg=True, v_nonneg=True)
    assert ours.chosen == 2
    for a, b in zip(ours.factors, lib.factors, strict=True):
        np.testing.assert_array_equal(a, b)
    again = tca.fit_shifted(X, 2, n_restarts=3, max_iter=20, seed=5)
    assert again.losses == ours.losses  # seeded: reproducible
    best = tca.fit_shifted(X, 2, n_restarts=3, max_iter=20, seed=5, restarts="best")
    assert best.losses == ours.losses and best.loss == min(ours.losses)
    with pytest.raises(ValueError, match="restarts"):
        tca.fit_shifted(X, 1, restarts="first")


def test_rank1_fit_recovers_a_planted_component():
    X = _planted()
    f = tca.fit_shifted(X, 1, n_restarts=2, max_iter=50, seed=0)
    u, v, w = f.normalised()
    truth_v = X.sum((0, 2))
    assert abs(np.corrcoef(v[0], truth_v)[0, 1]) > 0.99
    assert f.loss < 0.1
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0)


def test_ipd_correlations_are_pearson_and_order_free():
    ipd = np.linspace(-1, 1, 50)
    u = np.stack([ipd, -ipd ** 3, np.ones(50), np.cos(ipd)])
    r = tca.ipd_correlations(u, ipd)
    assert r[0] == pytest.approx(1.0) and r[1] < -0.9 and r[2] == 0.0
    assert r[3] == pytest.approx(np.corrcoef(u[3], ipd)[0, 1])
    np.testing.assert_allclose(tca.ipd_correlations(u[::-1], ipd), r[::-1])


def test_ward_clusters_separate_two_kinds_of_network():
    rng = np.random.default_rng(0)
    few = np.zeros((10, 30))
    few[:, :3] = 5 + rng.random((10, 3))  # three dominant units
    spread = 1 + 0.1 * rng.random((10, 30))
    spread[:, :15] += 1  # half the units active
    v = np.concatenate([few, spread]) + 0.01 * rng.random((20, 30))
    Z, labels, zs = tca.cluster_neuron_factors(v, t=5)
    assert len(set(labels[:10])) == 1 and len(set(labels[10:])) == 1
    assert labels[0] != labels[10]
    assert np.all(np.diff(zs, axis=1) <= 0)  # sorted descending
    np.testing.assert_allclose(zs.mean(1), 0, atol=1e-12)
    acc = np.r_[np.full(10, 0.8), np.full(10, 0.5)]
    rows = tca.cluster_summary(labels, zs, acc, acc - 0.1)
    by = {r["cluster"]: r for r in rows}
    assert by[labels[0]]["active_units"] == 3 and by[labels[0]]["train_accuracy"] == 0.8
    assert by[labels[10]]["active_units"] == 15
    assert by[labels[10]]["test_accuracy"] == pytest.approx(0.4)
