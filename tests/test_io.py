"""Atomic writes: whole files or none, with the permissions a plain write would give."""

import os
import stat

import pytest

from textgym.io import atomic_path, atomic_write_json, atomic_write_text


def test_atomic_write_replaces_the_file_whole(tmp_path):
    target = tmp_path / "sub" / "summary.json"
    atomic_write_json(target, {"b": 1, "a": [1, 2]})
    assert target.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["summary.json"]  # no temp files left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_get_the_mode_open_would_give(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "leaderboard.html", "<html></html>")
        (tmp_path / "plain.html").write_text("<html></html>")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "leaderboard.html").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.html").stat().st_mode) == 0o666 & ~umask
