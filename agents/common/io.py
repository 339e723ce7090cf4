"""Crash-safe files: everything is written to a temporary file, fsynced, then renamed.

A run killed at any moment leaves either the old file or the new one, never half of
one. Weights go to safetensors and everything else to JSON: loading a checkpoint never
unpickles (and so never runs) anything.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from textgym.errors import TextgymError
from textgym.io import atomic_path, atomic_write_bytes, atomic_write_json, fsync_dir

__all__ = [
    "atomic_save_tensors",
    "atomic_write_bytes",
    "atomic_write_json",
    "fsync_dir",
    "read_json",
    "read_tensors",
    "replace_dir",
    "resolve_dir",
]


def atomic_save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor]) -> None:
    """Save tensors as safetensors, atomically (shared storage is copied apart first).

    Raises:
        OSError: The file could not be written (a full disk: errno ENOSPC); safetensors
            reports such failures as its own error type, translated here.
    """
    with atomic_path(path) as tmp:
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
        try:
            save_file(tensors, tmp)
        except Exception as err:
            code = _errno_of(str(err))
            if code is None:
                raise
            raise OSError(code, os.strerror(code), os.fspath(path)) from err


def _errno_of(message: str) -> int | None:
    """The OS error code inside a safetensors I/O error message, if it holds one."""
    found = re.search(r"\bcode: (\d+)", message)
    if found:
        return int(found.group(1))
    if "No space left on device" in message:
        return errno.ENOSPC
    return None


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as err:
        raise TextgymError(f"{path}: not found (is this a textgym checkpoint?)") from err
    except OSError as err:  # NotADirectoryError, IsADirectoryError, PermissionError, ...
        raise TextgymError(f"{path}: cannot be read ({err})") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TextgymError(f"{path}: corrupt or truncated JSON ({err})") from err


def read_tensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """Load a safetensors file; anything else (a pickle, a truncated file) is refused."""
    try:
        return load_file(str(path), device=str(device))
    except FileNotFoundError as err:
        raise TextgymError(f"{path}: not found (is this a textgym checkpoint?)") from err
    except Exception as err:  # safetensors raises its own error types for bad headers
        raise TextgymError(
            f"{path}: not a valid safetensors file ({err}); textgym never loads pickles"
        ) from err


def replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished directory ``tmp`` to ``final``, keeping the old one until done.

    While the swap runs, ``final.old`` holds the previous version: :func:`resolve_dir`
    falls back to it if the process dies between the two renames.
    """
    old = final.with_name(final.name + ".old")
    if final.exists():
        # only now is a stale ``.old`` safe to drop: while ``final`` is missing,
        # ``.old`` may be the only complete copy (an earlier swap was interrupted)
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(tmp, final)
    fsync_dir(final.parent)
    if old.exists():
        shutil.rmtree(old)


def resolve_dir(path: Path) -> Path:
    """``path``, or its ``.old`` twin left by an interrupted :func:`replace_dir`."""
    old = path.with_name(path.name + ".old")
    if not path.exists() and old.exists():
        return old
    return path
