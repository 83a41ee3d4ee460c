"""The delay studies as task runs (spikeloc.analysis.delay_layer / dcls: train_task): params
checked field by field, files written, metrics equal to what the files hold, a killed run
resumes to exactly the uninterrupted result, the best-weights quirk, and the training
modules' code hash free of the figure code."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spikeloc.analysis import delay_layer as ddl
from spikeloc.errors import ConfigError

DCLS = pytest.importorskip("DCLS")
from spikeloc.analysis import dcls  # noqa: E402  (needs the dcls package)

DDL_SMALL = {"n_classes": 6, "ang_step_deg": 30.0, "epochs": 6, "batch_size": 20,
             "max_delay": 5, "n_test_batches": 2, "n_train_eval": 30, "n_test_eval": 40}
DCLS_SMALL = {"n_per_ear": 6, "n_hidden": 4, "n_classes": 3, "duration_steps": 20, "taps": 5,
              "n_train": 32, "n_val": 16, "n_test": 24, "batch_size": 16, "epochs": 4,
              "patience": 2}


def _task(module, params, out, seed=0):
    return module.train_task(params, seed=seed, out_dir=out, device="cpu", threads=1,
                             progress=False)


class Killed(Exception):
    pass


def _kill_after(monkeypatch, module, n):
    """Make the n-th checkpoint save raise right after writing (a kill between epochs)."""
    real = module._save_checkpoint
    calls = {"n": 0}

    def save(*args, **kwargs):
        real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == n:
            raise Killed

    monkeypatch.setattr(module, "_save_checkpoint", save)
    return calls


# ------------------------------------------------------------------------------ params


@pytest.mark.parametrize(
    ("module", "params", "field", "problem"),
    [
        (ddl, {"epoch": 3}, "epoch", "unknown parameter"),
        (ddl, {"epochs": 0}, "epochs", "must be >= 1, got 0"),
        (ddl, {"epochs": 2.5}, "epochs", "must be an integer, got float 2.5"),
        (ddl, {"epochs": True}, "epochs", "must be an integer, got a boolean True"),
        (ddl, {"lr": "2"}, "lr", "must be a number"),
        (ddl, {"synapse": "additive"}, "synapse", "must be subtractive or multiplicative"),
        (ddl, {"fix_first": 1}, "fix_first", "must be true or false"),
        (ddl, {"epochs": 3, "batch_size": 10, "n_train_eval": 31}, "n_train_eval",
         "must be <= epochs x batch_size (30"),
        (dcls, {"taps": 30}, "taps", "must be an odd integer >= 1"),
        (dcls, {"best_weights": "best"}, "best_weights", "must be references or copy"),
        (dcls, {"tau_s": 0}, "tau_s", "must be > 0, got 0.0"),
        (dcls, {"seed": 1}, "seed", "unknown parameter"),
        (dcls, {"n_train": 32, "batch_size": 64}, "n_train", "must be >= batch_size (64"),
    ],
)
def test_bad_params_name_their_field_before_anything_is_written(tmp_path, module, params,
                                                                field, problem):
    out = tmp_path / "run"
    with pytest.raises(ConfigError) as exc:
        _task(module, params, out)
    assert exc.value.field == field
    assert problem in exc.value.problem
    assert not out.exists()


def test_params_default_to_the_published_settings():
    s = ddl.settings_from({}, seed=2)
    assert (s.n_classes, s.epochs, s.batch_size, s.lr, s.n_steps, s.seed) == (36, 151, 200, 2.0,
                                                                              110, 2)
    d = dcls.settings_from({"lr": 1}, seed=0)
    assert (d.taps, d.n_hidden, d.epochs, d.max_lr, d.best_weights) == (31, 30, 150, 5e-3,
                                                                         "references")
    assert isinstance(d.lr, float) and d.lr == 1.0
    with pytest.raises(ConfigError, match="params must be a mapping"):
        ddl.settings_from([1, 2])


# ------------------------------------------------------------------------------ DDL


def test_ddl_task_writes_its_files_and_its_metrics_are_what_they_hold(tmp_path):
    out = tmp_path / "run"
    m = _task(ddl, DDL_SMALL, out, seed=3)
    assert {"model.pt", "history.csv", "evaluation.npz", "checkpoint.pt"} <= {
        p.name for p in out.iterdir()}
    run = ddl.load_run(out)
    assert run.settings == ddl.settings_from(DDL_SMALL, seed=3)
    assert len(run.losses) == m["epochs"] == 6
    assert run.losses[-1] == m["final_loss"]
    assert run.taus == [ddl.delays.tau_schedule(e) for e in range(6)]
    assert run.final_tau == m["final_tau_steps"] == ddl.delays.tau_schedule(6)  # as evaluated
    assert run.evaluation["test"]["accuracy"] == m["test_accuracy"]
    assert run.evaluation["train"]["mae_deg"] == m["train_mae_deg"]
    assert len(run.evaluation["train"]["true"]) == 30 and len(run.evaluation["test"]["true"]) == 40
    assert m["measure1_samples"] == 40 and run.evaluation["abs_errors_deg"].mean() == pytest.approx(
        m["measure1_mae_deg"])
    assert m["learned_delays"] == run.learned_delays[-1].astype(int).tolist()
    assert m["initial_delays"] == run.initial_delays[-1].astype(int).tolist()
    assert all(1 <= d < 5 for d in m["initial_delays"])  # randint(1, max_delay)
    assert m["chance"] == pytest.approx(1 / 6) and m["train_wall_s"] > 0
    json.dumps(m)  # JSON values only
    # the loaded model reproduces the recorded predictions
    # measure 1's batches come first in the test stream; measure 2 is the batch after them
    gen = ddl._generator(3, ddl._TEST)
    for _ in range(run.settings.n_test_batches):
        ddl.make_batch(run.settings, run.settings.batch_size, gen)
    xt, yt = ddl.make_batch(run.settings, 40, gen)
    assert np.array_equal(ddl.predict(run.model, xt, run.final_tau), run.evaluation["test"]["pred"])
    assert np.array_equal(yt.numpy(), run.evaluation["test"]["true"])
    # the training samples evaluated are the first epochs' batches
    x0, y0 = ddl.epoch_batch(run.settings, 0)
    assert np.array_equal(run.evaluation["train"]["true"][:20], y0.numpy())


def test_ddl_task_is_deterministic_per_seed(tmp_path):
    a = _task(ddl, DDL_SMALL, tmp_path / "a", seed=1)
    b = _task(ddl, DDL_SMALL, tmp_path / "b", seed=1)
    c = _task(ddl, DDL_SMALL, tmp_path / "c", seed=2)
    for k in ("final_loss", "test_accuracy", "learned_delays", "measure1_mae_deg"):
        assert a[k] == b[k]
    assert a["initial_delays"] != c["initial_delays"] or a["final_loss"] != c["final_loss"]


def test_a_killed_ddl_run_resumes_to_exactly_the_uninterrupted_result(tmp_path, monkeypatch):
    whole = _task(ddl, DDL_SMALL, tmp_path / "whole")
    out = tmp_path / "killed"
    calls = _kill_after(monkeypatch, ddl, 4)
    with pytest.raises(Killed):
        _task(ddl, DDL_SMALL, out)
    assert not (out / "model.pt").exists()
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    assert len(ck["losses"]) == 4
    resumed = _task(ddl, DDL_SMALL, out)
    assert calls["n"] == 4 + 2  # only the two missing epochs were trained
    for k in ("final_loss", "test_accuracy", "train_mae_deg", "learned_delays"):
        assert resumed[k] == whole[k]
    a, b = ddl.load_run(tmp_path / "whole"), ddl.load_run(out)
    assert a.losses == b.losses
    assert torch.equal(a.model.ddl.delay, b.model.ddl.delay)
    # a finished checkpoint is not trained again
    _task(ddl, DDL_SMALL, out)
    assert calls["n"] == 6


def test_a_checkpoint_of_other_settings_is_refused(tmp_path):
    out = tmp_path / "run"
    _task(ddl, DDL_SMALL, out)
    with pytest.raises(ddl.WeightsError, match="other settings"):
        _task(ddl, {**DDL_SMALL, "lr": 1.0}, out)


# ------------------------------------------------------------------------------ DCLS


def test_stop_early_is_the_notebooks_rule():
    assert dcls.stop_early([3, 2, 1, 1.5, 1.6], 4, 3)  # oldest of the last 3 is their min
    assert dcls.stop_early([3, 2, 1, 1.5, 1.6], 4, 2)  # [1.5, 1.6]
    assert not dcls.stop_early([3, 2, 1, 1.5, 0.9], 4, 3)  # improved since
    assert not dcls.stop_early([1, 2, 3, 4], 3, 3)  # the epoch must exceed the patience
    assert dcls.stop_early([1, 2, 3, 4, 5], 4, 3)
    assert not dcls.stop_early([1, 2], 4, 3)  # fewer losses than the patience


def test_dcls_task_files_metrics_and_resume(tmp_path, monkeypatch):
    whole = _task(dcls, DCLS_SMALL, tmp_path / "whole", seed=4)
    run = dcls.load_run(tmp_path / "whole")
    assert run.settings == dcls.settings_from(DCLS_SMALL, seed=4)
    assert len(run.history) == whole["epochs_run"] == 4  # patience 2: e = 3 may stop
    assert [h["epoch"] for h in run.history] == list(range(4))
    assert run.evaluation["test"]["accuracy"] == pytest.approx(whole["test_accuracy"])
    assert run.evaluation["test"]["mae_deg"] == pytest.approx(whole["test_mae_deg"], abs=1e-4)
    assert len(run.evaluation["train"]["true"]) == 32 and len(run.evaluation["test"]["true"]) == 24
    p = torch.round(run.model.w1.P.detach())
    assert whole["w1_delay_mean"] == pytest.approx(float(p.mean()))
    assert whole["w1_delay_sd"] == pytest.approx(float(p.std(unbiased=False)))
    assert -2 <= whole["w1_delay_min"] and whole["w1_delay_max"] <= 2  # |P| <= taps // 2
    assert run.history[-1]["sig"] == pytest.approx(0.23)  # annealed over epochs // 4 = 1
    # the validation set is drawn again every epoch (a new phase): its losses are not those
    # of one fixed set under slowly changing weights only
    assert len({h["val_loss"] for h in run.history}) == 4
    assert run.model.w1.mode == "max"
    json.dumps(whole)

    out = tmp_path / "killed"
    calls = _kill_after(monkeypatch, dcls, 2)
    with pytest.raises(Killed):
        _task(dcls, DCLS_SMALL, out, seed=4)
    resumed = _task(dcls, DCLS_SMALL, out, seed=4)
    assert calls["n"] == 4
    for k in ("test_accuracy", "train_accuracy", "final_val_loss", "best_epoch", "w1_delay_mean"):
        assert resumed[k] == whole[k]
    b = dcls.load_run(out)
    assert b.history == run.history
    for k, v in run.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k


def test_sig_is_not_annealed_below_four_epochs_and_incomplete_batches_are_dropped(tmp_path):
    m = _task(dcls, {**DCLS_SMALL, "epochs": 3, "n_train": 40}, tmp_path / "run")
    run = dcls.load_run(tmp_path / "run")
    assert [h["sig"] for h in run.history] == [2.0, 2.0, 2.0]  # taps // 2, epochs // 4 == 0
    # 40 samples in batches of 16: 32 trained per epoch, so accuracies are multiples of 1/32
    assert all((h["train_accuracy"] * 32) == round(h["train_accuracy"] * 32) for h in run.history)
    assert m["epochs_run"] == 3


def test_best_weights_references_keeps_the_final_weights_copy_the_best(tmp_path):
    states = {}
    for mode in ("references", "copy"):
        out = tmp_path / mode
        m = _task(dcls, {**DCLS_SMALL, "epochs": 6, "patience": 10, "best_weights": mode}, out,
                  seed=2)
        ck = torch.load(out / "checkpoint.pt", weights_only=True)
        want = ck["state"]["best_state"] if mode == "copy" else ck["model"]
        states[mode] = dcls.load_run(out).model.state_dict()
        for k, v in want.items():
            assert torch.equal(states[mode][k], v), (mode, k)
        assert m["best_epoch"] == 3 and m["epochs_run"] == 6  # (seed 2) the best is not the last
    assert not torch.equal(states["copy"]["w1.conv.weight"], states["references"]["w1.conv.weight"])


def test_training_modules_do_not_depend_on_their_figure_code():
    from spikeloc.pipeline import codehash

    for module in ("spikeloc.analysis.delay_layer", "spikeloc.analysis.dcls"):
        files = {p.name for p in codehash.code_files([module])}
        assert module.rsplit(".", 1)[1] + ".py" in files and "delays.py" in files
        assert not {"plots.py", "figures.py", "delay_layer_plots.py", "dcls_plots.py"} & files
        for p in codehash.code_files([module]):
            assert "matplotlib" not in p.read_text(), p
