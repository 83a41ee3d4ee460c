"""CMA-ES on the tutorial network (spikeloc.analysis.evolution): the batched population pass
against the core's network, fitness values, the task runs (determinism, resume after a kill),
bad parameters, the leaderboard factory and the learning-curve look-ups."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from spikeloc.analysis import evolution
from spikeloc.analysis import learning_curves as lc
from spikeloc.analysis.leaderboard import EvaluationProtocol, evaluate
from spikeloc.core.models import build_model
from spikeloc.core.stimuli import make_dataset
from spikeloc.core.training import seeded_generator
from spikeloc.errors import ConfigError

TINY = {
    "generations": 4,
    "eval_every": 2,
    "popsize": 6,
    "batch_size": 16,
    "n_train": 64,
    "n_test": 32,
    "n_hidden": 5,
}


def test_population_pass_equals_each_network_alone():
    cfg = evolution.task_config(
        evolution.check_params({"n_hidden": 7}, evolution.CMAES_DEFAULTS), 0
    )
    data = make_dataset(
        24, cfg.stimulus, generator=torch.Generator().manual_seed(1), dtype=torch.bool
    )
    models = [build_model(cfg, generator=seeded_generator(s, "model")) for s in range(3)]
    W1 = torch.stack([m.W1.detach() for m in models])
    W2 = torch.stack([m.W2.detach() for m in models])
    together = evolution.population_readout(data.spikes, W1, W2, cfg)
    assert together.shape == (3, 24, 12)
    for k, m in enumerate(models):
        with torch.no_grad():
            alone = m(data.spikes).readout
        assert torch.allclose(together[k], alone, rtol=1e-5, atol=1e-6)


def test_fitness_values():
    values = torch.tensor([[[2.0, 0.0], [0.0, 1.0]], [[0.0, 3.0], [0.0, 0.0]]])
    labels = torch.tensor([0, 1])
    err = evolution._fitness(values, labels, "error")
    assert err.tolist() == [0.0, 1.0]  # member 1: wrong on sample 0; sample 1 ties, argmax 0
    ce = evolution._fitness(values, labels, "cross_entropy")
    lse = lambda a, b: float(np.log(np.exp(a) + np.exp(b)))  # noqa: E731
    by_hand0 = ((lse(2, 0) - 2) + (lse(0, 1) - 1)) / 2
    by_hand1 = ((lse(0, 3) - 0) + (lse(0, 0) - 0)) / 2
    assert ce.tolist() == pytest.approx([by_hand0, by_hand1], rel=1e-6)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"popsiz": 4}, "popsiz"),
        ({"method": "diag"}, "method"),
        ({"sigma0": 0}, "sigma0"),
        ({"generations": 1.5}, "generations"),
        ({"stimulus": {"frequency_hz": -1}}, "stimulus.frequency_hz"),
    ],
)
def test_bad_params_name_their_field(params, field):
    with pytest.raises(ConfigError) as err:
        evolution.task_config(evolution.check_params(params, evolution.CMAES_DEFAULTS), 0)
    assert err.value.field == field


def test_cmaes_run_is_deterministic_and_resumes(tmp_path, monkeypatch):
    a = evolution.train_cmaes(TINY, seed=3, out_dir=tmp_path / "a")
    assert a["curve_generation"] == [0, 2, 4]
    assert a["curve_sample_evaluations"] == [0, 2 * 6 * 16, 4 * 6 * 16]
    assert a["n_parameters"] == 5 * (200 + 12) and a["evaluations"] == 24
    assert (tmp_path / "a" / "weights.pt").is_file()
    assert not (tmp_path / "a" / "checkpoint.pkl").exists()
    assert evolution.read_curve(tmp_path / "a")[-1]["test_accuracy"] == a["accuracy"]
    b = evolution.train_cmaes(TINY, seed=3, out_dir=tmp_path / "b")
    assert b["curve_test_accuracy"] == a["curve_test_accuracy"]
    assert b["curve_best_fitness"] == a["curve_best_fitness"]
    # a kill in generation 3: the rerun resumes from generation 2's checkpoint
    calls = {"n": 0}
    real = evolution._fitness

    def dies(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(evolution, "_fitness", dies)
    with pytest.raises(KeyboardInterrupt):
        evolution.train_cmaes(TINY, seed=3, out_dir=tmp_path / "c")
    assert (tmp_path / "c" / "checkpoint.pkl").is_file()
    monkeypatch.setattr(evolution, "_fitness", real)
    c = evolution.train_cmaes(TINY, seed=3, out_dir=tmp_path / "c")
    assert c["curve_test_accuracy"] == a["curve_test_accuracy"]
    assert c["curve_best_fitness"] == a["curve_best_fitness"]


def test_leaderboard_entry_of_a_run(tmp_path):
    m = evolution.train_cmaes(TINY, seed=0, out_dir=tmp_path)
    run = SimpleNamespace(path=tmp_path, params=TINY, seed=0, metrics=m)
    loc = evolution.evolved_localiser({}, run)
    assert loc.n_parameters == m["n_parameters"]
    row = evaluate(loc, EvaluationProtocol(seeds=(9001,), n_per_seed=8))
    assert row["n_test"] == 8 and 0 <= row["accuracy_pct"] <= 100


def test_surrogate_curve(tmp_path):
    m = evolution.train_surrogate(
        {"epochs": 2, "n_train": 64, "n_test": 32, "n_hidden": 5}, seed=0, out_dir=tmp_path
    )
    assert m["curve_epoch"] == [0, 1, 2] and m["curve_sample_evaluations"] == [0, 64, 128]
    assert m["curve_wall_s"][0] == 0 and m["curve_wall_s"][1] <= m["curve_wall_s"][2]
    assert m["accuracy"] == m["curve_test_accuracy"][-1]


def test_budget_lookups():
    wall, acc = [0.0, 1.0, 2.0, 4.0], [0.1, 0.3, 0.5, 0.6]
    assert lc.accuracy_at_budget(wall, acc, 2.5) == 0.5
    assert lc.accuracy_at_budget(wall, acc, 100) == 0.6
    assert lc.accuracy_at_budget(wall, acc, -1) == 0.1
    assert lc.time_to_accuracy(wall, acc, 0.45) == 2.0
    assert np.isnan(lc.time_to_accuracy(wall, acc, 0.9))
    with pytest.raises(ValueError):
        lc.accuracy_at_budget([0.0], [0.1, 0.2], 1)


def test_runs_by_seed_orders_groups_and_refuses_a_repeated_seed():
    from pathlib import Path

    from spikeloc.analysis.learning_curves import runs_by_seed
    from spikeloc.pipeline.tasks import TaskRun

    def run(seed, h, acc):
        return TaskRun(Path("."), "t", {"n_hidden": h}, seed, {"accuracy": acc})

    found = [run(1, 30, 0.5), run(0, 30, 0.4), run(0, 10, 0.3)]
    by = runs_by_seed(found, group=lambda p: p["n_hidden"],
                      params=lambda p: {**p, "filled": True})
    assert list(by) == [10, 30] and [r["accuracy"] for r in by[30]] == [0.4, 0.5]
    assert by[10][0]["params"] == {"n_hidden": 10, "filled": True}
    assert [r["accuracy"] for r in runs_by_seed(found[:2])] == [0.4, 0.5]
    with pytest.raises(ValueError, match="seed 0 twice"):
        runs_by_seed([run(0, 30, 0.1), run(0, 30, 0.2)])
