"""Task runs (spikeloc.pipeline.tasks): a library function as a pipeline run -- expansion,
fingerprints, bad manifests, computing a chunk, resuming, errors naming the manifest field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spikeloc import cli
from spikeloc.errors import ConfigError, SpikelocError
from spikeloc.pipeline import chunks, sweeps, tasks
from spikeloc.pipeline.sweeps import ExpansionError, expand_module, fingerprint

# an existing library function: check_task reads the source, the tests replace what is called
TASK = "spikeloc.analysis.jeffress:simulate_counts"


def manifest(**over):
    m = {
        "runs": {
            "single": {
                "task": TASK,
                "seed": 3,
                "params": {"n": 4, "sub": {"a": 1}},
                "quick": {"params": {"n": 2}},
            },
            "net": {"preset": "basic", "seed": 0},
        },
        "sweeps": {
            "size": {
                "task": TASK,
                "params": {"n": 10, "rate": 0.5},
                "grid": {"params.n": [1, 2, 3]},
                "seeds": 3,
                "quick": {"params": {"rate": 0.25}},
            }
        },
    }
    m.update(over)
    return m


def test_task_runs_expand_with_params_seeds_and_quick_sizes():
    runs, swept = expand_module("m", manifest(), "paper", root="R")
    single = runs["single"]
    assert single.task == TASK and single.path == "R/runs/m/single" and single.seed == 3
    assert single.config == {"task": TASK, "params": {"n": 4, "sub": {"a": 1}}, "seed": 3}
    assert runs["net"].task is None and "model" in runs["net"].config
    names = [r.name for r in swept["size"]]
    assert names[:3] == ["n=1__seed=0", "n=1__seed=1", "n=1__seed=2"] and len(names) == 9
    assert swept["size"][4].config["params"] == {"n": 2, "rate": 0.5}
    assert swept["size"][4].swept == {"params.n": 2}
    runs_q, swept_q = expand_module("m", manifest(), "quick", root="R")
    assert runs_q["single"].config["params"] == {"n": 2, "sub": {"a": 1}}
    # quick: the grid's ends, two seeds, the quick params under the grid's values
    assert [r.name for r in swept_q["size"]] == [
        "n=1__seed=0",
        "n=1__seed=1",
        "n=3__seed=0",
        "n=3__seed=1",
    ]
    assert swept_q["size"][2].config["params"] == {"n": 3, "rate": 0.25}


def test_a_task_run_has_its_own_code_hash_in_its_fingerprint():
    runs, _ = expand_module("m", manifest(), "paper")
    single, net = runs["single"], runs["net"]
    own = tasks.task_code_hash(TASK)
    assert single.code_hash("network-hash") == own != "network-hash"
    assert net.code_hash("network-hash") == "network-hash"
    # the network code's hash does not move a task run; its params do
    assert fingerprint(single, "a") == fingerprint(single, "b")
    other = expand_module(
        "m", manifest(runs={"single": {"task": TASK, "seed": 3, "params": {"n": 5}}}), "paper"
    )[0]
    assert fingerprint(other["single"], "a") != fingerprint(single, "a")


@pytest.mark.parametrize(
    "runs,field,problem",
    [
        ({"r": {"task": TASK, "preset": "basic"}}, "runs.r.preset", "not both"),
        ({"r": {"seed": 1}}, "runs.r", "needs a preset"),
        ({"r": {"task": TASK, "overrides": {"model": {}}}}, "runs.r.overrides", "takes params"),
        ({"r": {"preset": "basic", "params": {"n": 1}}}, "runs.r.params", "takes overrides"),
        ({"r": {"task": "spikeloc.analysis.nosuch:f"}}, "runs.r.task", "no module"),
        ({"r": {"task": "spikeloc.analysis.jeffress:nosuch"}}, "runs.r.task", "no function"),
        ({"r": {"task": "numpy.linalg:norm"}}, "runs.r.task", "spikeloc.<module>"),
    ],
)
def test_bad_task_runs_name_the_field(runs, field, problem):
    with pytest.raises(ExpansionError) as exc:
        expand_module("m", {"runs": runs}, "paper")
    assert exc.value.field == field and problem in exc.value.problem


def test_sweep_keys_must_match_the_kind_of_run():
    bad = {"s": {"task": TASK, "grid": {"model.tau_hidden_s": [1, 2]}}}
    with pytest.raises(ExpansionError, match="name the key params") as exc:
        expand_module("m", {"sweeps": bad}, "paper")
    assert exc.value.field == "sweeps.s.grid.model.tau_hidden_s"
    bad = {"s": {"preset": "basic", "grid": {"params.n": [1, 2]}}}
    with pytest.raises(ExpansionError, match="trains a network") as exc:
        expand_module("m", {"sweeps": bad}, "paper")
    assert exc.value.field == "sweeps.s.grid.params.n"


def test_the_schema_admits_task_runs(tmp_path):
    from spikeloc.pipeline.manifests import scan_manifests

    (tmp_path / "m.yaml").write_text(
        "title: A task module\ndescription: D\nowners: [someone]\nfigures: []\n"
        f"runs:\n  r: {{task: '{TASK}', params: {{n: 1}}}}\n"
        "  bad: {task: 'not a task'}\n"
    )
    _, problems = scan_manifests(tmp_path, root=tmp_path, check_files=False)
    assert problems == [
        f"{tmp_path / 'm.yaml'}: runs.bad.task: 'not a task' is not a task: "
        "spikeloc.<module>:<function> (e.g. spikeloc.analysis.reservoir:train)"
    ]


# --------------------------------------------------------------------------- computing


class Recorder:
    """A task function: records its calls; optionally fails, interrupts or misbehaves."""

    def __init__(self, mode="ok"):
        self.calls, self.mode = [], mode

    def __call__(self, params, *, seed, out_dir, device, threads, progress):
        self.calls.append(
            {
                "params": params,
                "seed": seed,
                "out_dir": Path(out_dir),
                "device": device,
                "threads": threads,
                "progress": progress,
            }
        )
        out_dir = Path(out_dir)
        if self.mode == "config_error":
            raise ConfigError("params", "n", "must be > 0, got -1")
        if self.mode == "not_mapping":
            return [1, 2]
        ckpt = out_dir / "step.txt"
        if self.mode == "interrupt_once" and not ckpt.exists():
            ckpt.write_text("half done")
            raise KeyboardInterrupt
        (out_dir / "weights.npy").write_bytes(np.arange(3.0).tobytes())
        return {
            "accuracy": np.float64(0.5),
            "curve": np.array([1.0, 2.0]),
            "resumed": ckpt.exists(),
            "n": params["n"] * seed,
        }


def make_spec(tmp_path, runs_block, name="m"):
    runs, swept = expand_module(name, {"runs": runs_block}, "paper", root=str(tmp_path / "results"))
    chunk = sweeps.chunks(name, sweeps.SINGLE_RUNS, list(runs.values()), 10)[0]
    path = tmp_path / "spec.json"
    path.write_text(chunks.spec_text(chunk, "network-hash"))
    return path, runs


@pytest.fixture
def recorder(monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(tasks, "_function", lambda task, where: rec)
    return rec


def test_a_chunk_computes_a_task_run_once_and_writes_its_files(tmp_path, recorder):
    spec, runs = make_spec(tmp_path, {"r": {"task": TASK, "seed": 2, "params": {"n": 4}}})
    out = tmp_path / "result.json"
    result = chunks.train_chunk(
        spec, out, device="cpu", threads=1, progress=False, say=lambda s: None
    )
    run_dir = Path(runs["r"].path)
    assert [c["params"] for c in recorder.calls] == [{"n": 4}]
    call = recorder.calls[0]
    assert call["seed"] == 2 and call["device"] == "cpu" and call["threads"] == 1
    assert call["out_dir"] == run_dir.with_name("r.partial")  # computed in the scratch dir
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "config.json",
        "metrics.json",
        "provenance.json",
        "weights.npy",
    ]
    assert not run_dir.with_name("r.partial").exists()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["accuracy"] == 0.5 and metrics["curve"] == [1.0, 2.0] and metrics["n"] == 8
    assert metrics["train_wall_s"] >= 0
    prov = json.loads((run_dir / "provenance.json").read_text())
    assert prov["code_hash"] == tasks.task_code_hash(TASK) and prov["task"] == TASK
    assert result["rows"][0]["accuracy"] == 0.5 and result["trained"] == 1
    loaded = tasks.load_task_run(run_dir)
    assert loaded.params == {"n": 4} and loaded.seed == 2 and loaded.metrics["n"] == 8
    assert loaded.file("weights.npy").is_file()
    with pytest.raises(SpikelocError, match="wrote no such file"):
        loaded.file("nothing.npy")
    # up to date: not computed again
    again = chunks.train_chunk(spec, out, progress=False, say=lambda s: None)
    assert len(recorder.calls) == 1 and again["trained"] == 0
    # new params: a new fingerprint, computed again, the run replaced
    spec, _ = make_spec(tmp_path, {"r": {"task": TASK, "seed": 2, "params": {"n": 5}}})
    chunks.train_chunk(spec, out, progress=False, say=lambda s: None)
    assert len(recorder.calls) == 2
    assert json.loads((run_dir / "metrics.json").read_text())["n"] == 10


def test_a_killed_task_run_gets_back_what_it_left(tmp_path, recorder):
    recorder.mode = "interrupt_once"
    spec, runs = make_spec(tmp_path, {"r": {"task": TASK, "params": {"n": 1}}})
    out = tmp_path / "result.json"
    with pytest.raises(KeyboardInterrupt):
        chunks.train_chunk(spec, out, progress=False, say=lambda s: None)
    assert not out.exists() and not Path(runs["r"].path).exists()
    said = []
    chunks.train_chunk(spec, out, progress=False, say=said.append)
    assert any("resuming" in s for s in said)
    assert json.loads((Path(runs["r"].path) / "metrics.json").read_text())["resumed"] is True


def test_a_partial_of_other_params_is_not_resumed(tmp_path, recorder):
    recorder.mode = "interrupt_once"
    spec, runs = make_spec(tmp_path, {"r": {"task": TASK, "params": {"n": 1}}})
    with pytest.raises(KeyboardInterrupt):
        chunks.train_chunk(spec, tmp_path / "o.json", progress=False, say=lambda s: None)
    spec, _ = make_spec(tmp_path, {"r": {"task": TASK, "params": {"n": 2}}})
    recorder.mode = "ok"
    chunks.train_chunk(spec, tmp_path / "o.json", progress=False, say=lambda s: None)
    assert json.loads((Path(runs["r"].path) / "metrics.json").read_text())["resumed"] is False


def test_bad_params_stop_the_chunk_with_the_manifest_field(tmp_path, recorder, capsys):
    recorder.mode = "config_error"
    spec, runs = make_spec(tmp_path, {"r": {"task": TASK, "params": {"n": -1}}})
    out = tmp_path / "result.json"
    rc = cli.main(["train-chunk", str(spec), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and not out.exists()
    assert err == [
        "spikeloc: error: workflow/analyses/m.yaml: runs.r.params.n: must be > 0, got -1"
    ]


def test_a_task_that_returns_no_mapping_is_refused(tmp_path, recorder):
    recorder.mode = "not_mapping"
    spec, runs = make_spec(tmp_path, {"r": {"task": TASK, "params": {"n": 1}}})
    with pytest.raises(SpikelocError, match="not a mapping of metrics"):
        chunks.train_chunk(spec, tmp_path / "o.json", progress=False, say=lambda s: None)
    assert not Path(runs["r"].path).exists()


def test_load_task_run_names_what_to_run(tmp_path):
    missing = tmp_path / "results" / "quick" / "runs" / "mod" / "r"
    with pytest.raises(SpikelocError, match="snakemake analyse_mod"):
        tasks.load_task_run(missing)
