"""Issue 22: the remaining bad inputs (one line naming file and field, exit 2, nothing of the
user's replaced, nothing half-written), crash leftovers, stale checkpoints, seed streams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from spikeloc.core.config import SEED_MAX, config_from_dict, load_config
from spikeloc.core.training import _STREAMS, seeded_generator, train_run
from spikeloc.errors import ConfigError, SpikelocError, WeightsError
from spikeloc.io import atomic_write_text, load_weights, remove_temp_files

TINY = {
    "preset": "tutorial",
    "seed": 3,
    "device": "cpu",
    "stimulus": {"anf_per_ear": 10, "duration_s": 0.01},
    "model": {"n_inputs": 20, "n_hidden": 4, "tau_hidden_s": 0.005, "tau_output_s": 0.005},
    "training": {"n_train": 64, "n_test": 32, "batch_size": 32, "epochs": 2},
}


def tiny(**over):
    d = yaml.safe_load(yaml.safe_dump(TINY))
    for k, v in over.items():
        d[k] = {**d.get(k, {}), **v} if isinstance(v, dict) else v
    return d


def spikeloc(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "spikeloc.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def one_error_line(res, *needles):
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("spikeloc: error:")]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def write_cfg(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


# ----------------------------------------------------------------- the table's rows


@pytest.mark.parametrize("text", ["", "{}\n", "# only a comment\n"])
def test_empty_run_config_is_refused(tmp_path, text):
    cfg = write_cfg(tmp_path / "empty.yaml", text)
    res = spikeloc("train", cfg, "--out", tmp_path / "run")
    one_error_line(res, "empty.yaml", "<top>", "empty run config")
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


def test_out_naming_an_existing_file_is_refused_before_training(tmp_path):
    cfg = write_cfg(tmp_path / "c.yaml", tiny())
    mine = tmp_path / "notes.txt"
    mine.write_text("my notes\n")
    res = spikeloc("train", cfg, "--out", mine)
    one_error_line(res, "notes.txt", "--out", "not a directory")
    assert mine.read_text() == "my notes\n"
    assert not (tmp_path / "notes.txt.old").exists()
    assert not (tmp_path / "notes.txt.partial").exists()


def test_out_naming_a_folder_that_is_not_a_run_is_refused(tmp_path):
    cfg = write_cfg(tmp_path / "c.yaml", tiny())
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "thesis.tex").write_text("x")
    one_error_line(spikeloc("train", cfg, "--out", folder), "docs", "--out", "not a spikeloc run")
    assert (folder / "thesis.tex").read_text() == "x"


@pytest.mark.parametrize("out", ["file.txt/run", ".", "..", "sub/.."])
def test_out_under_a_file_or_dot_is_one_line(tmp_path, out):
    cfg = write_cfg(tmp_path / "c.yaml", tiny())
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    one_error_line(spikeloc("train", cfg, "--out", out, cwd=tmp_path), "--out")
    assert (tmp_path / "file.txt").read_text() == "x"


def test_corrupt_checkpoint_with_resume_is_one_line(tmp_path):
    cfg = write_cfg(tmp_path / "c.yaml", tiny())
    partial = tmp_path / "run.partial"
    partial.mkdir()
    (partial / "checkpoint.pt").write_bytes(b"PK\x03\x04 garbage, not a zip")
    res = spikeloc("train", cfg, "--out", tmp_path / "run", "--resume")
    one_error_line(res, "checkpoint.pt", "<file>", "not a readable checkpoint")
    assert (partial / "checkpoint.pt").exists()  # left for the user to look at
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args", [["--device", "cpu"], ["--threads", "1"], []])
def test_yaml_list_as_config_with_overrides(tmp_path, args):
    cfg = write_cfg(tmp_path / "list.yaml", "- 1\n- 2\n")
    res = spikeloc("train", cfg, "--out", tmp_path / "run", *args)
    one_error_line(res, "list.yaml", "<top>", "must be a YAML mapping")


@pytest.mark.parametrize("value", [1.0, 1])
def test_dropout_one_is_refused(value):
    with pytest.raises(ConfigError) as e:
        config_from_dict(tiny(model={"dropout": value}), "r.yaml")
    assert e.value.field == "model.dropout" and "[0, 1)" in str(e.value)
    assert config_from_dict(tiny(model={"dropout": 0.99})).model.dropout == 0.99


@pytest.mark.parametrize(
    "training, field",
    [
        ({"legacy_numpy_seed": -1}, "training.legacy_numpy_seed"),
        ({"legacy_numpy_seed": 2**32}, "training.legacy_numpy_seed"),
    ],
)
def test_out_of_range_legacy_seed_in_config(training, field):
    with pytest.raises(ConfigError) as e:
        config_from_dict(tiny(training=training), "r.yaml")
    assert e.value.field == field


@pytest.mark.parametrize("seed", [-1, 2**64, 2**70, SEED_MAX + 1])
def test_out_of_range_seed_in_config(seed):
    with pytest.raises(ConfigError) as e:
        config_from_dict(tiny(seed=seed), "r.yaml")
    assert e.value.field == "seed"
    assert config_from_dict(tiny(seed=SEED_MAX)).seed == SEED_MAX


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--seed", str(2**64)], "--seed"),
        (["--seed", "-3"], "--seed"),
        (["--legacy-numpy-seed", "-1"], "--legacy-numpy-seed"),
        (["--legacy-numpy-seed", str(2**32)], "--legacy-numpy-seed"),
    ],
)
def test_out_of_range_seeds_on_the_command_line(published_weights, args, needle):
    res = spikeloc("evaluate", "--weights", published_weights, "--samples", "8", *args)
    assert res.returncode == 2 and needle in res.stderr and "Traceback" not in res.stderr


def _model_pt(tmp_path, state) -> Path:
    path = tmp_path / "model.pt"
    cfg = config_from_dict(tiny()).to_dict()
    torch.save({"format": "spikeloc-model/1", "state_dict": state, "config": cfg}, path)
    return path


def test_model_pt_holding_a_string_is_refused(tmp_path):
    path = _model_pt(tmp_path, {"W1": "not a tensor", "W2": torch.zeros(4, 12)})
    with pytest.raises(WeightsError) as e:
        load_weights(path)
    assert e.value.field == "state_dict.W1" and "tensor" in e.value.problem
    res = spikeloc("evaluate", "--weights", path, "--samples", "8")
    one_error_line(res, "model.pt", "state_dict.W1")


def test_model_pt_with_nan_weights_is_refused(tmp_path):
    w1 = torch.zeros(20, 4)
    w1[3, 1] = float("nan")
    path = _model_pt(tmp_path, {"W1": w1, "W2": torch.zeros(4, 12)})
    res = spikeloc("evaluate", "--weights", path, "--samples", "8")
    one_error_line(res, "model.pt", "state_dict.W1", "NaN")


@pytest.mark.parametrize("probability", ["exact", "point"])
def test_rate_above_one_per_bin_is_refused_for_both_modes(probability):
    st = {"probability": probability, "rate_max_hz": 20000.0, "dt_s": 1e-4}
    with pytest.raises(ConfigError) as e:
        config_from_dict(tiny(stimulus=st), "r.yaml")
    assert e.value.field == "stimulus.rate_max_hz" and probability in e.value.problem
    ok = {**st, "rate_max_hz": 10000.0}
    assert config_from_dict(tiny(stimulus=ok)).stimulus.rate_max_hz == 10000.0


# ----------------------------------------------------------------- kills and leftovers


def test_leftover_temp_of_a_killed_write_is_not_carried_into_the_run(tmp_path):
    cfg = config_from_dict(tiny())
    partial = tmp_path / "run.partial"
    partial.mkdir()
    # what a kill inside atomic_write_json(metrics.json) leaves: an old-style and a dead pid's
    (partial / ".metrics.json.k2j3h4g5.tmp").write_text('{"half": ')
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    host = os.uname().nodename.replace(".", "_")
    (partial / f".history.csv.{host}-{dead}.abcdefgh.tmp").write_text("epoch,")
    train_run(cfg, tmp_path / "run", resume=True, progress=False)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(
        ["model.pt", "metrics.json", "history.csv", "provenance.json", "config.yaml"]
    )
    assert not partial.exists()


def test_temp_files_of_a_live_writer_are_kept(tmp_path):
    host = os.uname().nodename.replace(".", "_")
    live = tmp_path / f".x.json.{host}-{os.getppid()}.abcdefgh.tmp"
    live.write_text("being written")
    atomic_write_text(tmp_path / "x.json", "{}")
    assert live.exists() and remove_temp_files(tmp_path) == []


def test_kill_between_the_two_renames_leaves_no_old_forever(tmp_path):
    cfg = config_from_dict(tiny())
    run = tmp_path / "run"
    train_run(cfg, run, progress=False)
    before = (run / "model.pt").read_bytes()
    # the state after os.replace(run, run.old) and before os.replace(partial, run)
    os.replace(run, tmp_path / "run.old")
    train_run(cfg, run, progress=False)
    assert not (tmp_path / "run.old").exists()
    assert (run / "model.pt").read_bytes() == before
    # and with RUN present too (a kill after the second rename, before the cleanup)
    (tmp_path / "run.old").mkdir()
    train_run(cfg, run, resume=True, progress=False)
    assert not (tmp_path / "run.old").exists()


def test_changed_config_sets_the_stale_checkpoint_aside_and_starts_over(tmp_path, caplog):
    run = tmp_path / "run"
    cfg = config_from_dict(tiny(training={"epochs": 3}))

    class Killed(Exception):
        pass

    from spikeloc.core import training as tr

    def kill(epoch, row):
        if epoch == 1:
            raise Killed

    partial = tmp_path / "run.partial"
    partial.mkdir()
    with pytest.raises(Killed):
        tr.train(cfg, checkpoint_path=partial / "checkpoint.pt", progress=False, on_epoch_end=kill)
    changed = config_from_dict(tiny(training={"epochs": 3, "lr": 0.02}))
    with caplog.at_level("WARNING", logger="spikeloc.core.training"):
        metrics = train_run(changed, run, resume=True, progress=False)
    assert metrics["epochs_run"] == 3
    assert (tmp_path / "run.stale" / "checkpoint.pt").is_file()
    assert any("set aside" in r.getMessage() for r in caplog.records)
    fresh = train_run(changed, tmp_path / "ref", progress=False)
    assert fresh["accuracy"] == metrics["accuracy"]
    assert (run / "model.pt").read_bytes() != b""


def test_resume_without_a_checkpoint_says_so(tmp_path, caplog):
    with caplog.at_level("INFO", logger="spikeloc.core.training"):
        train_run(config_from_dict(tiny()), tmp_path / "run", resume=True, progress=False)
    assert any("no checkpoint" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------- random streams


def test_no_two_seed_stream_pairs_share_a_generator_seed():
    ids = sorted(_STREAMS.values())
    assert len(set(ids)) == len(ids) and 0 < ids[0] and ids[-1] < 1000
    seen = {}
    for seed in [0, 1, 2, 7919, 7920, 10**6, SEED_MAX - 1, SEED_MAX]:
        for stream in _STREAMS:
            g = seeded_generator(seed, stream)
            key = g.initial_seed()
            assert key not in seen, (seed, stream, seen.get(key))
            seen[key] = (seed, stream)
    assert max(seen) < 2**64
    with pytest.raises(ConfigError):
        seeded_generator(SEED_MAX + 1, "data")


def test_fresh_data_no_longer_replays_another_seeds_fixed_set():
    """data: fresh drew epoch sets from the fixed-data stream of seed + 7919."""
    from spikeloc.core.stimuli import make_dataset

    cfg = config_from_dict(tiny())
    fixed_other = make_dataset(64, cfg.stimulus, generator=seeded_generator(3 + 7919, "data"))
    fresh = make_dataset(64, cfg.stimulus, generator=seeded_generator(3, "fresh_data"))
    assert not torch.equal(fixed_other.ipd, fresh.ipd)


def test_load_config_names_the_file_for_empty_input(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write_cfg(tmp_path / "e.yaml", ""), {"device": "cpu"})
    assert e.value.source.endswith("e.yaml") and e.value.field == "<top>"


def test_spikeloc_error_for_out_is_not_a_config_error(tmp_path):
    f = tmp_path / "f"
    f.write_text("")
    with pytest.raises(SpikelocError):
        train_run(config_from_dict(tiny()), f, progress=False)
    assert f.read_text() == ""


def test_chunk_retrains_a_run_whose_own_checkpoint_is_unreadable(tmp_path):
    """In the workflow the checkpoint is a cache: a corrupt one must not stop the pipeline."""
    from test_sweeps import tiny_chunk

    from spikeloc.pipeline import chunks as ch
    from spikeloc.pipeline import sweeps as sw

    chunk = tiny_chunk(tmp_path / "results", n=1)
    run = chunk.runs[0]
    partial = Path(run.path + ".partial")
    partial.mkdir(parents=True)
    (partial / ch.PARTIAL_MARK).write_text(json.dumps({"fingerprint": sw.fingerprint(run, "c")}))
    (partial / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    spec = tmp_path / "spec.json"
    spec.write_text(ch.spec_text(chunk, "c"))
    said: list[str] = []
    result = ch.train_chunk(
        spec, tmp_path / "r.json", device="cpu", progress=False, say=said.append
    )
    assert result["trained"] == 1 and not partial.exists()
    assert any("cannot be used" in s for s in said)
    assert ch.run_is_current(run.path, sw.fingerprint(run, "c"))
