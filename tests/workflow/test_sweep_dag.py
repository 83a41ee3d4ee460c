"""A sweep module through the quick DAG, from a copy of the repository, on the CPU.

* A module made by `spikeloc new-module --sweep` (only its own three files are added; its
  owner already has a contributor file) trains its 2 grid points x 2 seeds, tabulates them and
  runs its notebook; a third grid point added to its manifest then trains only that point
  (the train log says the other four are up to date and their run directories stay as they
  were, byte for byte and mtime for mtime).
* A chunk of three runs killed with SIGKILL (its process group: snakemake and the
  `spikeloc train-chunk` job) after its first run finished and while its second is training
  is rerun: the finished run is left alone, the second resumes its epoch checkpoint, the third
  trains, and the sweep table equals the table of an uninterrupted run in a second copy in
  every column except the wall times (`*_wall_s`), which no two runs share.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from workflow_helpers import BIN, copy_repo, env_for, run, snakemake, snakemake_exe

from spikeloc.pipeline.chunks import RUN_FILES
from spikeloc.pipeline.results import load_sweep

QUICK = ["--configfile", "config/quick.yaml"]
MODULE = "tau_study"
TABLE = f"results/quick/sweeps/{MODULE}/tau.csv"
TRAIN_LOG = f"logs/quick/train/{MODULE}/tau.0.log"
RUNS = f"results/quick/runs/{MODULE}/tau"


def files_of(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def scaffold_sweep(root: Path) -> None:
    before = files_of(root)
    r = run(
        [str(BIN / "spikeloc"), "new-module", MODULE, "--owner", "thesamovar"]
        + ["--title", "Hidden time constants", "--sweep"],
        root,
    )
    assert r.returncode == 0, r.stdout
    assert "does not exist yet" not in r.stdout  # thesamovar has a contributor file
    assert files_of(root) - before == {
        f"workflow/analyses/{MODULE}.yaml",
        f"workflow/notebooks/{MODULE}.ipynb",
        f"paper/sections/{MODULE}.typ",
    }


def edit_sweep(root: Path, **quick) -> dict:
    """Change the module's sweep ``tau`` (grid and quick grid set to ``values`` if given,
    other keys into its quick block); returns the sweep as written."""
    path = root / f"workflow/analyses/{MODULE}.yaml"
    data = yaml.safe_load(path.read_text())
    sweep = data["sweeps"]["tau"]
    values = quick.pop("values", None)
    if values is not None:
        sweep["grid"] = {"model.tau_hidden_s": values}
        sweep["quick"]["grid"] = {"model.tau_hidden_s": values}  # every value at quick scale
    sweep["quick"].update(quick)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return sweep


def run_files(run_dir: Path) -> dict[str, tuple[int, bytes]]:
    """mtime and bytes of every file of a finished run directory."""
    return {f: ((run_dir / f).stat().st_mtime_ns, (run_dir / f).read_bytes()) for f in RUN_FILES}


@pytest.mark.slow
def test_scaffolded_sweep_runs_and_a_new_grid_point_trains_alone(tmp_path):
    root = copy_repo(tmp_path / "repo")
    scaffold_sweep(root)
    targets = [f"results/quick/notebooks/{MODULE}.ipynb", *QUICK]
    out = snakemake(targets, root, timeout=900)
    assert out.returncode == 0, out.stdout[-6000:]

    table = load_sweep(root / TABLE)
    assert list(table.columns[:4]) == ["run", "path", "model.tau_hidden_s", "seed"]
    assert len(table) == 4
    assert table["model.tau_hidden_s"].tolist() == [0.01, 0.01, 0.02, 0.02]
    assert table["seed"].tolist() == [0, 1, 0, 1]
    assert table["run"].tolist()[1] == "tau_hidden_s=0.01__seed=1"
    assert table["path"].tolist()[1] == f"{RUNS}/tau_hidden_s=0.01__seed=1"
    assert table["accuracy"].between(0, 1).all() and (table["n_samples"] == 128).all()
    assert (table["epochs_run"] == 1).all()  # the quick block's sizes
    assert all(len(rates) == 30 for rates in table["hidden_rates_hz"])
    recorded = yaml.safe_load((root / f"results/quick/variables/{MODULE}.json").read_text())
    assert recorded["variables"]["n_runs"]["value"] == 4
    assert recorded["variables"]["best_tau_ms"]["value"] in (10.0, 20.0)
    for ext in ("pdf", "png", "json"):
        assert (root / f"figures/quick/{MODULE}_accuracy.{ext}").is_file()

    # a third grid point: only its two runs train, the four others stay as they are
    old = {name: run_files(root / RUNS / name) for name in table["run"]}
    edit_sweep(root, values=[0.01, 0.02, 0.04])
    out = snakemake([TABLE, *QUICK], root, timeout=900)
    assert out.returncode == 0, out.stdout[-6000:]
    log = (root / TRAIN_LOG).read_text()
    assert log.count(": up to date") == 4, log
    assert "2 trained, 4 up to date" in log, log
    for name, files in old.items():
        assert f"{name}: up to date" in log
        assert run_files(root / RUNS / name) == files, name
    table = load_sweep(root / TABLE)
    assert table["model.tau_hidden_s"].tolist() == [0.01, 0.01, 0.02, 0.02, 0.04, 0.04]
    assert table["seed"].tolist() == [0, 1] * 3


def train_chunk_pid(root: Path) -> int | None:
    """The `spikeloc train-chunk` process whose working directory is ``root``, if running."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if b"train-chunk" in cmd and any(c.endswith(b"spikeloc") for c in cmd[:2]):
            if Path(cwd) == root.resolve():
                return int(proc.name)
    return None


def wait_for(what: str, check, proc: subprocess.Popen, timeout: float = 300):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = check()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"snakemake ended (status {proc.returncode}) before {what}")
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def table_without_wall_times(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: v for k, v in row.items() if not k.endswith("_wall_s")} for row in rows]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="finds the job through /proc")
def test_killed_chunk_trains_only_its_unfinished_runs(tmp_path):
    values = [0.01, 0.02, 0.04]
    names = [f"tau_hidden_s={v:g}__seed=0" for v in values]
    # one chunk of three runs, each long enough (5 epochs, a checkpoint after each) to be
    # caught training; ensembles off, so that the chunk trains its runs one after the other
    quick = {"values": values, "seeds": [0]}
    quick["overrides"] = {"training": {"epochs": 5, "n_train": 512, "n_test": 128}}
    alone = tmp_path / "alone.yaml"
    alone.write_text("train: {ensemble: false}\n")
    args = [TABLE, *QUICK, str(alone)]
    roots = {}
    for copy in ("killed", "whole"):
        roots[copy] = copy_repo(tmp_path / copy)
        scaffold_sweep(roots[copy])
        edit_sweep(roots[copy], **quick)
    root = roots["killed"]
    runs = [root / RUNS / n for n in names]

    def start(where: Path, **kw) -> subprocess.Popen:
        return subprocess.Popen(
            [snakemake_exe(), *args],
            cwd=where,
            env=env_for(where),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **kw,
        )

    # the uninterrupted copy trains meanwhile; its table is the reference
    whole = start(roots["whole"])
    proc = start(root, start_new_session=True)  # its own process group: snakemake and its jobs
    try:

        def second_is_training():
            log = root / TRAIN_LOG
            text = log.read_text() if log.is_file() else ""
            return f"run 1/3 {names[0]}: done" in text and f"run 2/3 {names[1]}: training" in text

        wait_for("the second run to start training", second_is_training, proc)
        pid = wait_for("the train-chunk process", lambda: train_chunk_pid(root), proc)
        assert os.getpgid(pid) == proc.pid  # the job is in snakemake's group
        checkpoint = Path(f"{runs[1]}.partial/checkpoint.pt")
        wait_for("the second run's first checkpoint", checkpoint.is_file, proc)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    assert all((runs[0] / f).is_file() for f in RUN_FILES)
    assert not runs[1].exists() and checkpoint.is_file(), "the second run finished too soon"
    assert not runs[2].exists() and not Path(f"{runs[2]}.partial/checkpoint.pt").exists()
    assert not (root / f"results/quick/chunks/{MODULE}/tau.0.json").exists()
    first = run_files(runs[0])

    # snakemake died with its job: its lock is stale, and it says how to remove it
    again = snakemake(args, root, timeout=900)
    if again.returncode != 0:
        assert "--unlock" in again.stdout, again.stdout[-4000:]
        assert snakemake(["--unlock", *args], root, timeout=300).returncode == 0
        again = snakemake(args, root, timeout=900)
    assert again.returncode == 0, again.stdout[-6000:]
    log = (root / TRAIN_LOG).read_text()
    assert f"run 1/3 {names[0]}: up to date" in log, log
    assert f"run 2/3 {names[1]}: training (5 epochs of 512 samples, resuming its checkpoint)" in log
    assert f"run 3/3 {names[2]}: training (5 epochs of 512 samples)" in log
    assert "2 trained, 1 up to date" in log
    assert run_files(runs[0]) == first  # the finished run is untouched

    output, _ = whole.communicate(timeout=900)
    assert whole.returncode == 0, output[-6000:]
    assert "3 trained, 0 up to date" in (roots["whole"] / TRAIN_LOG).read_text()
    # every column but the wall times (*_wall_s) is identical: names, paths, swept values,
    # seeds, accuracies, errors, losses, firing rates, epochs, device
    killed_rows = table_without_wall_times(root / TABLE)
    whole_rows = table_without_wall_times(roots["whole"] / TABLE)
    assert len(killed_rows) == 3 and "accuracy" in killed_rows[0]
    assert killed_rows == whole_rows
