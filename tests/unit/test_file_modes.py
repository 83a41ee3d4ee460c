"""Outputs are readable by collaborators: atomic writes keep the umask's mode (issue 21, item 2)."""

from __future__ import annotations

import os
import stat

import pytest

from spikeloc.io import atomic_write_bytes, atomic_write_json, atomic_write_text, final_mode


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_new_files_get_the_umask_mode(tmp_path, umask022):
    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_write_bytes(tmp_path / "b.bin", b"x")
    atomic_write_json(tmp_path / "sub" / "c.json", {"a": 1})
    assert [_mode(tmp_path / p) for p in ("a.txt", "b.bin", "sub/c.json")] == [0o644] * 3


def test_another_umask_is_respected(tmp_path):
    old = os.umask(0o007)
    try:
        atomic_write_text(tmp_path / "group.txt", "x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "group.txt") == 0o660


def test_an_existing_file_keeps_its_mode(tmp_path, umask022):
    tracked = tmp_path / "CITATION.cff"
    tracked.write_text("old")
    os.chmod(tracked, 0o640)
    atomic_write_text(tracked, "new")
    assert tracked.read_text() == "new" and _mode(tracked) == 0o640
    assert final_mode(tracked) == 0o640


def test_no_temporary_file_is_left_after_a_failed_write(tmp_path, umask022):
    class Boom(Exception):
        pass

    def fail(_fh):
        raise Boom

    from spikeloc import io as sio

    with pytest.raises(Boom):
        sio._atomic(tmp_path / "x.txt", fail, "w")
    assert list(tmp_path.iterdir()) == []


def test_authorship_outputs_keep_the_mode_of_tracked_files(tmp_path, umask022):
    from spikeloc.pipeline.authorship import _write_atomic

    cff = tmp_path / "CITATION.cff"
    cff.write_text("cff-version: 1.2.0\n")
    os.chmod(cff, 0o644)
    _write_atomic(cff, "cff-version: 1.2.0\ntitle: x\n")
    _write_atomic(tmp_path / "authors.json", "{}\n")
    assert _mode(cff) == 0o644 and _mode(tmp_path / "authors.json") == 0o644
