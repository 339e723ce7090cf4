"""Crash-safe files for run directories, and reading a run's ``summary.json``.

Every file is written to a temporary name in the same directory, fsynced, and renamed
over the target (``os.replace`` is atomic on POSIX), then the directory is fsynced: a
bench killed at any moment leaves each file either absent, old, or complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from textgym.io import atomic_write_bytes, atomic_write_json, atomic_write_text, fsync_dir

__all__ = [
    "REQUIRED_FIELDS",
    "RUN_SPEC",
    "SUMMARY",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "fsync_dir",
    "read_summary",
]

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
