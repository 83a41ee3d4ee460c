"""Runs and sweeps in manifests: expansion, names, scales, chunks, fingerprints, code hash,
chunk training and tables."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from spikeloc.pipeline import chunks as ch
from spikeloc.pipeline import codehash
from spikeloc.pipeline import sweeps as sw
from spikeloc.pipeline.manifests import load_manifest, module_chunks
from spikeloc.pipeline.validation import ProblemsError


def sweep(**extra):
    spec = {"preset": "tutorial", "grid": {"model.tau_hidden_s": [0.005, 0.01, 0.02]}, "seeds": 2}
    spec.update(extra)
    return {"sweeps": {"tau": spec}}


def test_grid_times_seeds_with_readable_deterministic_names():
    runs, sweeps = sw.expand_module("demo", sweep(), "paper")
    assert runs == {}
    names = [r.name for r in sweeps["tau"]]
    assert names == [
        "tau_hidden_s=0.005__seed=0",
        "tau_hidden_s=0.005__seed=1",
        "tau_hidden_s=0.01__seed=0",
        "tau_hidden_s=0.01__seed=1",
        "tau_hidden_s=0.02__seed=0",
        "tau_hidden_s=0.02__seed=1",
    ]
    first = sweeps["tau"][0]
    assert first.path == "results/paper/runs/demo/tau/tau_hidden_s=0.005__seed=0"
    assert first.config["model"]["tau_hidden_s"] == 0.005 and first.config["seed"] == 0
    assert first.config["training"]["epochs"] == 10  # the tutorial preset, unchanged
    assert "device" not in first.config and "threads" not in first.config
    again = sw.expand_module("demo", sweep(), "paper")[1]
    assert [r.config_text for r in again["tau"]] == [r.config_text for r in sweeps["tau"]]


def test_cartesian_grid_crossed_with_zipped_lists():
    spec = sweep(
        grid={"training.lr": [0.01, 0.001]},
        zip={"model.tau_hidden_s": [0.005, 0.02], "model.tau_output_s": [0.005, 0.02]},
        seeds=[7],
    )
    runs = sw.expand_module("demo", spec, "paper")[1]["tau"]
    got = [(r.swept["training.lr"], r.swept["model.tau_hidden_s"], r.seed) for r in runs]
    assert got == [(0.01, 0.005, 7), (0.01, 0.02, 7), (0.001, 0.005, 7), (0.001, 0.02, 7)]
    assert all(r.config["model"]["tau_output_s"] == r.swept["model.tau_output_s"] for r in runs)
    assert runs[0].name == "lr=0.01__tau_hidden_s=0.005__tau_output_s=0.005__seed=7"
    # the same last component twice: the whole dotted key names it
    twice = sweep(grid={}, zip={"stimulus.n_classes": [6, 12], "model.n_classes": [6, 12]})
    runs = sw.expand_module("demo", twice, "paper")[1]["tau"]
    assert runs[0].name == "stimulus-n_classes=6__model-n_classes=6__seed=0"


def test_quick_default_shrink_and_explicit_quick():
    runs = sw.expand_module("demo", sweep(), "quick")[1]["tau"]
    assert sorted({r.swept["model.tau_hidden_s"] for r in runs}) == [0.005, 0.02]  # the ends
    assert sorted({r.seed for r in runs}) == [0, 1]
    training = runs[0].config["training"]
    assert (training["epochs"], training["n_train"], training["n_test"]) == (3, 1024, 512)
    assert runs[0].path.startswith("results/quick/runs/demo/tau/")
    quick = {"grid": {"model.tau_hidden_s": [0.01]}, "seeds": 1}
    quick["overrides"] = {"training": {"epochs": 1, "n_train": 128}}
    runs = sw.expand_module("demo", sweep(quick=quick), "quick")[1]["tau"]
    assert [r.name for r in runs] == ["tau_hidden_s=0.01__seed=0"]
    training = runs[0].config["training"]
    assert (training["epochs"], training["n_train"], training["n_test"]) == (1, 128, 512)
    # quick changes sizes only: everything else is the paper-scale run's
    paper = sw.expand_module("demo", sweep(), "paper")[1]["tau"][2]
    for block in ("stimulus", "model"):
        assert runs[0].config[block] == paper.config[block]


def test_single_runs_and_their_quick_sizes():
    manifest = {"runs": {"base": {"preset": "basic", "seed": 3, "quick": {}}}}
    run = sw.expand_module("demo", manifest, "paper")[0]["base"]
    assert (run.path, run.seed, run.config["training"]["epochs"]) == (
        "results/paper/runs/demo/base",
        3,
        100,
    )
    quick = sw.expand_module("demo", manifest, "quick")[0]["base"]
    assert quick.config["training"]["epochs"] == 3 and quick.config["model"]["n_hidden"] == 8


@pytest.mark.parametrize(
    ("spec", "field", "problem"),
    [
        (
            sweep(grid={"model.tau_hidden_s": [0.01, -1]}),
            "sweeps.tau.grid.model.tau_hidden_s",
            "-1",
        ),
        (sweep(grid={"model.no_such": [1]}), "sweeps.tau.grid.model.no_such", "unknown key"),
        (
            sweep(zip={"model.tau_hidden_s": [0.01], "model.tau_output_s": [1, 2]}, grid={}),
            "sweeps.tau.zip.model.tau_output_s",
            "one length",
        ),
        (
            sweep(zip={"model.tau_hidden_s": [0.01]}),
            "sweeps.tau.zip.model.tau_hidden_s",
            "also a grid key",
        ),
    ],
)
def test_expansion_errors_name_the_field(spec, field, problem):
    with pytest.raises(sw.ExpansionError) as info:
        sw.expand_module("demo", spec, "paper")
    assert info.value.field == field and problem in info.value.problem


def test_chunks_are_consecutive_slices():
    runs = sw.expand_module("demo", sweep(), "paper")[1]["tau"]
    parts = sw.chunks("demo", "tau", runs, 4)
    assert [len(c.runs) for c in parts] == [4, 2]
    assert [c.id for c in parts] == ["demo/tau.0", "demo/tau.1"]
    assert [r for c in parts for r in c.runs] == runs


def test_fingerprint_follows_config_and_code():
    a, b = sw.expand_module("demo", sweep(), "paper")[1]["tau"][:2]
    assert sw.fingerprint(a, "code1") == sw.fingerprint(a, "code1")
    assert sw.fingerprint(a, "code1") != sw.fingerprint(b, "code1")
    assert sw.fingerprint(a, "code1") != sw.fingerprint(a, "code2")


# --------------------------------------------------------------------------- code hash


def test_code_files_follow_the_imports_of_training_including_lazy_ones():
    files = {p.relative_to(codehash._package_dir()).as_posix() for p in codehash.code_files()}
    # lazily imported kernels (inside functions) are part of what trains a run
    assert {"engine/cpu_kernels.py", "engine/kernel_threads.py", "core/training.py"} <= files
    assert {"engine/__init__.py", "core/__init__.py", "__init__.py"} <= files
    # plotting, notebooks' analyses and the workflow glue are not
    assert not any(f.startswith(("analysis/", "pipeline/")) for f in files)


def test_code_hash_ignores_docstrings_and_comments_not_code(tmp_path, monkeypatch):
    pkg = tmp_path / "spikeloc"
    shutil.copytree(codehash._package_dir(), pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codehash, "_package_dir", lambda: pkg)
    before = codehash.code_hash()
    kernels = pkg / "engine" / "kernel_threads.py"
    text = kernels.read_text()
    kernels.write_text(text.replace('"""', '"""Edited docstring. ', 1) + "\n# a comment\n")
    assert codehash.code_hash() == before
    kernels.write_text(text + "\nCHANGED = 1\n")
    assert codehash.code_hash() != before


# --------------------------------------------------------------------------- chunks


def test_a_scaffold_like_manifest_loads_and_chunks(tmp_path):
    analyses = tmp_path / "workflow" / "analyses"
    analyses.mkdir(parents=True)
    (analyses / "demo.yaml").write_text(
        "title: Demo\nowners: [thesamovar]\nfigures: []\n"
        "runs: {one: {preset: tutorial}}\n"
        "sweeps: {tau: {preset: tutorial, grid: {model.tau_hidden_s: [0.01, 0.02]}, seeds: 3,"
        " chunk_size: 4}}\n"
    )
    m = load_manifest("demo", analyses)
    got = [(c.group, c.index, len(c.runs)) for c in module_chunks(m, "paper", 8)]
    assert got == [("runs", 0, 1), ("tau", 0, 4), ("tau", 1, 2)]
    (analyses / "demo.yaml").write_text("title: Demo\nowners: [thesamovar]\nfigures: []\nrunz: 1\n")
    with pytest.raises(ProblemsError, match=r"demo.yaml: runz: unknown key"):
        load_manifest("demo", analyses)


def tiny_chunk(root: Path, n: int = 2) -> sw.Chunk:
    spec = sweep(
        grid={"model.tau_hidden_s": [0.01, 0.02][:n]},
        seeds=1,
        overrides={"training": {"epochs": 1, "n_train": 64, "n_test": 64, "batch_size": 32}},
    )
    runs = sw.expand_module("demo", spec, "paper", root=str(root))[1]["tau"]
    return sw.chunks("demo", "tau", runs, 8)[0]


def test_train_chunk_trains_skips_and_tabulates(tmp_path):
    chunk = tiny_chunk(tmp_path / "results")
    spec = tmp_path / "spec.json"
    spec.write_text(ch.spec_text(chunk, "code1"))
    said: list[str] = []
    result = ch.train_chunk(
        spec, tmp_path / "r.json", device="cpu", progress=False, say=said.append
    )
    assert result["trained"] == 2 and len(result["rows"]) == 2
    for run in chunk.runs:
        assert ch.run_is_current(run.path, sw.fingerprint(run, "code1"))
        assert not Path(run.path + ".partial").exists()
    # again: nothing to train, the same rows
    said.clear()
    again = ch.train_chunk(
        spec, tmp_path / "r2.json", device="cpu", progress=False, say=said.append
    )
    assert again["trained"] == 0 and sum(s.endswith(": up to date") for s in said) == 2
    assert again["rows"] == result["rows"]
    # new code: every run retrains
    spec.write_text(ch.spec_text(chunk, "code2"))
    third = ch.train_chunk(
        spec, tmp_path / "r3.json", device="cpu", progress=False, say=said.append
    )
    assert third["trained"] == 2
    # the table: one row per run, swept key, seed and metrics
    text = ch.table_text([tmp_path / "r3.json"])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["model.tau_hidden_s"] for r in rows] == ["0.01", "0.02"]
    assert [r["seed"] for r in rows] == ["0", "0"]
    assert 0 <= float(rows[0]["accuracy"]) <= 1
    assert len(json.loads(rows[0]["hidden_rates_hz"])) == 30


def test_a_stale_partial_directory_is_discarded(tmp_path):
    chunk = tiny_chunk(tmp_path / "results", n=1)
    run = chunk.runs[0]
    partial = Path(run.path + ".partial")
    partial.mkdir(parents=True)
    (partial / ch.PARTIAL_MARK).write_text(json.dumps({"fingerprint": "someone-else"}))
    (partial / "checkpoint.pt").write_bytes(b"not a checkpoint")
    spec = tmp_path / "spec.json"
    spec.write_text(ch.spec_text(chunk, "code1"))
    result = ch.train_chunk(spec, tmp_path / "r.json", device="cpu", progress=False, say=print)
    assert result["trained"] == 1 and not partial.exists()


def test_bad_chunk_files_name_file_and_field(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"format": ch.SPEC_FORMAT, "runs": [{"name": "x"}]}))
    with pytest.raises(Exception, match=r"spec.json: runs\[0\].path: missing"):
        ch.train_chunk(spec, tmp_path / "r.json")
    spec.write_text("{")
    with pytest.raises(Exception, match=r"spec.json: \(file\): not a readable chunk spec"):
        ch.train_chunk(spec, tmp_path / "r.json")
    with pytest.raises(Exception, match=r"nope.json: \(file\): no such chunk result"):
        ch.table_text([tmp_path / "nope.json"])
    assert not (tmp_path / "r.json").exists()
