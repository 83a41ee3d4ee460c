"""Bad input is rejected with one line naming the file and the field; exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spikeloc.core.config import DaleConfig, config_from_dict, load_config
from spikeloc.core.models import build_model, dale_signs
from spikeloc.errors import ConfigError


def spikeloc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "spikeloc.cli", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.mark.parametrize(
    "yaml_text, field",
    [
        ("model: {n_hiden: 8}\n", "model.n_hiden"),
        ("model: {tau_hidden_s: -0.002}\n", "model.tau_hidden_s"),
        ("model: {readout: softmax}\n", "model.readout"),
        ("training: {epochs: ten}\n", "training.epochs"),
        ("training: {lr: .nan}\n", "training.lr"),
        ("preset: fancy\n", "preset"),
        ("stimulus: {anf_per_ear: 50}\n", "model.n_inputs"),
        ("model: {dale: {inhibitory_fraction: 1.5}}\n", "model.dale.inhibitory_fraction"),
        ("training: {early_stopping: true}\n", "training.n_val"),
        ("device: gpu\n", "device"),
        ("seed: 1.5\n", "seed"),
        ("model: [1, 2]\n", "model"),
        ("stimulus: {frequency_hz: 20\n", "line"),
    ],
)
def test_bad_configs_name_file_and_field(tmp_path, yaml_text, field):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(exc.value).startswith(f"{path}: {field}")
    r = spikeloc("train", str(path), "--out", str(tmp_path / "run"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and field in lines[0]
    assert not (tmp_path / "run").exists()


def test_missing_config_file(tmp_path):
    r = spikeloc("train", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and "nope.yaml: <file>: cannot read" in r.stderr


def test_unknown_key_suggests_the_right_name():
    with pytest.raises(ConfigError, match="did you mean 'n_hidden'"):
        config_from_dict({"model": {"n_hiden": 8}})


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda p: p.write_bytes(b"not a zip"), "<file>"),
        (lambda p: np.savez(p, W_ih=np.zeros((200, 8), np.float32)), "W2"),
        (
            lambda p: np.savez(
                p, W_ih=np.zeros((200, 9), np.float32), W_ho=np.zeros((9, 12), np.float32)
            ),
            "W1",
        ),
        (
            lambda p: np.savez(
                p, W_ih=np.full((200, 8), np.nan, np.float32), W_ho=np.zeros((8, 12), np.float32)
            ),
            "W_ih",
        ),
    ],
)
def test_bad_weight_files(tmp_path, make, field):
    path = tmp_path / "w.npz"
    make(path)
    r = spikeloc("evaluate", "--preset", "basic", "--weights", str(path), "--samples", "16")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{path}: {field}" in lines[0], r.stderr


def test_missing_and_corrupt_model_pt(tmp_path):
    r = spikeloc("evaluate", "--weights", str(tmp_path / "missing.pt"), "--samples", "16")
    assert r.returncode == 2 and "missing.pt: <file>: no such file" in r.stderr
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x00" * 100)
    r = spikeloc("evaluate", "--weights", str(bad), "--samples", "16")
    assert r.returncode == 2 and f"{bad}: <file>" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_npz_without_config_needs_preset(published_weights):
    r = spikeloc("evaluate", "--weights", str(published_weights), "--samples", "16")
    assert r.returncode == 2 and "pass --preset or --config" in r.stderr


def test_bad_cli_argument_exits_2(published_weights):
    r = spikeloc(
        "evaluate", "--preset", "basic", "--weights", str(published_weights), "--samples", "-3"
    )
    assert r.returncode == 2 and "--samples" in r.stderr


def test_cli_evaluate_human_output(published_weights):
    r = spikeloc(
        "evaluate", "--preset", "basic", "--weights", str(published_weights), "--samples", "256"
    )
    assert r.returncode == 0
    for word in ("accuracy:", "MAE (midpoints):", "MAE (continuous):", "hidden rates (Hz):"):
        assert word in r.stdout


def test_dale_signs_random_and_contiguous():
    import torch

    g = torch.Generator().manual_seed(0)
    s = dale_signs(10, DaleConfig(enabled=True, inhibitory_fraction=0.3), "input", g)
    assert int((s < 0).sum()) == 3
    c = dale_signs(
        10, DaleConfig(enabled=True, inhibitory_fraction=0.5, placement="contiguous"), "input"
    )
    assert c.tolist() == [-1] * 5 + [1] * 5
    e = dale_signs(10, DaleConfig(enabled=True, hidden_signs="excitatory"), "hidden", g)
    assert bool((e > 0).all())


def test_dale_effective_weights_and_init_bounds():
    cfg = config_from_dict(
        {"preset": "tutorial", "model": {"dale": {"enabled": True, "inhibitory_fraction": 0.5}}}
    )
    m = build_model(cfg)
    w1, w2 = m.effective_weights()
    rows_neg = (w1 <= 0).all(1)
    assert int(rows_neg.sum()) == 100  # half the input rows inhibitory
    assert bool(((w1 >= 0).all(1) | rows_neg).all())
    b = 1 / np.sqrt(12)  # starting-notebook quirk: both bounds from the 200 x 12 W
    assert float(m.W1.detach().abs().max()) <= b and float(m.W2.detach().abs().max()) <= b
    basic = build_model(config_from_dict({"preset": "basic"}))
    assert float(basic.W1.detach().abs().max()) <= 1 / np.sqrt(8) and float(
        basic.W1.detach().abs().max()
    ) > 1 / np.sqrt(12)


def test_every_problem_of_a_run_config_is_reported_at_once(tmp_path):
    from spikeloc.core.config import load_config
    from spikeloc.errors import ConfigError

    path = tmp_path / "run.yaml"
    path.write_text(
        "preset: basic\nmodel: {n_hiden: 4, tau_hidden_s: abc}\ntraining: {epoks: 2, lr: -1}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).splitlines() == [
        f"{path}: model.n_hiden: unknown key (did you mean 'n_hidden'?)",
        f"{path}: model.tau_hidden_s: must be a number, got 'abc'",
        f"{path}: training.epoks: unknown key (did you mean 'epochs'?)",
        f"{path}: training.lr: must be > 0, got -1.0",
    ]
    assert len(err.value.problems) == 4 and err.value.field == "model.n_hiden"


def test_an_unknown_key_without_a_close_match_lists_the_allowed_keys(tmp_path):
    from spikeloc.core.config import config_from_dict
    from spikeloc.errors import ConfigError

    with pytest.raises(ConfigError, match=r"overides: unknown key \(allowed: name, preset, seed"):
        config_from_dict({"preset": "basic", "overides": {}}, "run.yaml")
