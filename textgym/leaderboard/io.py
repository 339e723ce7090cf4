"""Crash-safe files for run directories, and reading a run's ``summary.json``.

Every file is written to a temporary name in the same directory, fsynced, and renamed
over the target (``os.replace`` is atomic on POSIX), then the directory is fsynced: a
bench killed at any moment leaves each file either absent, old, or complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

SUMMARY = "summary.json"
RUN_SPEC = "run.json"

# Fields every summary.json has (what ``textgym train`` writes; baselines write the same).
REQUIRED_FIELDS = (
    "env_id",
    "env_kwargs",
    "agent",
    "seed",
    "total_env_steps",
    "wall_time_s",
    "device",
    "versions",
    "test_metrics",
)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path``: tmp file in the same directory + fsync + ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_summary(path: str | os.PathLike) -> tuple[dict | None, str]:
    """Read a ``summary.json``: ``(summary, "")`` or ``(None, why it is not usable)``."""
    path = Path(path)
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "no summary.json"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"unreadable summary.json ({err})"
    if not isinstance(summary, dict):
        return None, "summary.json is not a JSON object"
    missing = [k for k in REQUIRED_FIELDS if k not in summary]
    if missing:
        return None, f"summary.json lacks {', '.join(missing)}"
    if not isinstance(summary["test_metrics"], dict):
        return None, "summary.json's test_metrics is not an object"
    return summary, ""
