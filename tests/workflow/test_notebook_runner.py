"""The notebook runner leaks no kernel or progress-bar warnings into logs (issue 21, item 9)."""

from __future__ import annotations

import subprocess
import sys

import nbformat


def _notebook(path, code):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("x = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, path)


def test_a_notebook_runs_with_parameters_and_no_warnings(tmp_path):
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    _notebook(src, "import spikeloc.core.training as t\nbar = t.tqdm(range(3))\nlist(bar)\nprint('x is', x)")
    r = subprocess.run(
        [sys.executable, "-m", "spikeloc.pipeline.notebooks", str(src), str(out), "-y", "{x: 7}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    assert "x is 7" in out.read_text()
    assert "without encryption" not in log and "IProgress" not in log, log
    assert "without encryption" not in out.read_text() and "IProgress" not in out.read_text()


def test_a_failing_cell_fails_the_run(tmp_path):
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    _notebook(src, "raise ValueError('boom')")
    r = subprocess.run(
        [sys.executable, "-m", "spikeloc.pipeline.notebooks", str(src), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode != 0 and "boom" in r.stdout + r.stderr
