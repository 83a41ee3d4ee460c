"""environment.yml (clusters) and pyproject.toml (pip) ask for the same versions."""

from __future__ import annotations

import re
import tomllib

import yaml


def _pins(lines):
    out = {}
    for item in lines:
        m = re.match(r"^([A-Za-z0-9_.-]+)\s*(==|=|>=)\s*([0-9][^\s,;]*)", item)
        if m:
            out[m.group(1).lower()] = (m.group(2).replace("==", "="), m.group(3))
    return out


def test_conda_and_pip_routes_agree(repo_root):
    env = yaml.safe_load((repo_root / "environment.yml").read_text())
    conda = _pins([d for d in env["dependencies"] if isinstance(d, str)])
    pip_extra = [d for d in env["dependencies"] if isinstance(d, dict)][0]["pip"]
    conda.update(_pins(pip_extra))
    proj = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    # the brian2 extra is an environment of its own (brian2 2.9.0 needs numpy < 2.4; scripts/test
    # makes it), so it does not belong in the cluster environment
    extras = [v for k, v in proj["optional-dependencies"].items() if k != "brian2"]
    pip = _pins(proj["dependencies"] + sum(extras, []))
    conda["torch"] = conda.pop("pytorch")
    for name in ("snakemake", "snakemake-executor-plugin-slurm"):
        assert conda[name] == pip[name] == ("=", conda[name][1]), name
    # torch: conda pins the version the pip route installs first; pyproject admits it
    assert conda["torch"] == ("=", "2.13.0")
    torch_req = [d for d in proj["dependencies"] if d.startswith("torch")][0]
    assert "<2.14" in torch_req
    # every other pip requirement is in the conda env with the same lower bound
    # triton (dev: the interpreter for the GPU-kernel tests) is left to conda's pytorch, whose
    # CUDA builds bring the triton they were built with
    for name, (op, ver) in pip.items():
        if name in ("torch", "cffconvert", "triton"):
            continue
        assert name in conda, f"{name} is in pyproject.toml but not environment.yml"
        assert conda[name][1] == ver, f"{name}: {conda[name]} vs {(op, ver)}"
