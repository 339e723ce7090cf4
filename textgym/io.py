"""Crash-safe files: write to a temporary file in the same directory, fsync, rename.

A process killed at any moment leaves each file absent, old or complete, never half
written (``os.replace`` is atomic on POSIX). Shared by the tokenizer cache, the agents'
checkpoints and run summaries, and the benchmark runner.

:func:`lock_dir` keeps two processes from writing one run directory at once;
:func:`file_lock` makes one wait while another builds a cache entry. :func:`sampled_crcs`
checks a large cache file that is mapped rather than read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from textgym.errors import TextgymError


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a directory entry (a rename) to disk, where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; once the block has written it, fsync it and
    rename it over ``path``. If the block raises, ``path`` is untouched and the temporary
    file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    # mkstemp makes the file 0600; give it the mode a plain open() would (0666 less the
    # umask), so a published leaderboard or a shared cache stays readable by others
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def remove_atomic_leftovers(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed :func:`atomic_path` writer left in
    ``directory`` (``.NAME.XXXXXXXX.tmp``; the files they were replacing are intact).
    Call it only while holding the directory's :func:`lock_dir`: a live writer's
    temporary file would go too. Returns what was deleted."""
    removed = []
    for path in Path(directory).glob(".*.tmp"):
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path``: tmp file in the same directory + fsync + ``os.replace``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary directory beside ``path``; once the block has filled it, fsync its
    files and rename it to ``path``, so that ``path`` is absent or complete, never half
    written. If the block raises, the temporary directory is removed.

    Raises:
        FileExistsError: ``path`` exists already (another writer published it first); the
            temporary directory is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield str(tmp)
        for entry in tmp.iterdir():
            with open(entry, "rb") as f:
                os.fsync(f.fileno())
        fsync_dir(tmp)
        try:
            os.rename(tmp, path)  # refuses a non-empty directory in the way
        except OSError as err:
            if path.exists():
                raise FileExistsError(f"{path} exists already") from err
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if need be), waiting for it.

    Raises:
        OSError: ``path`` cannot be created (a read-only cache directory).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the atomic rename alone
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def discard_dir(path: str | os.PathLike) -> None:
    """Remove directory ``path``: renamed first, so that no reader ever sees it half
    removed (a process that still maps its files keeps reading them until it lets go)."""
    path = Path(path)
    trash = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
    os.rename(path, trash / "entry")
    fsync_dir(path.parent)
    shutil.rmtree(trash, ignore_errors=True)


def json_checksum(body: Any) -> str:
    """Digest of a JSON-able object (keys sorted): the checksum a manifest carries."""
    text = json.dumps(body, sort_keys=True, ensure_ascii=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def write_checksummed_json(path: str | os.PathLike, body: dict) -> None:
    """Write ``body`` plus a ``"checksum"`` key (:func:`json_checksum` of ``body``); for a
    file inside an entry that :func:`atomic_dir` publishes."""
    Path(path).write_text(json.dumps(dict(body, checksum=json_checksum(body)), ensure_ascii=True))


def read_checksummed_json(path: str | os.PathLike, damaged: type[Exception]) -> dict:
    """The body of a file :func:`write_checksummed_json` wrote; ``damaged(message)`` is
    raised, naming the file, when it is missing, unreadable or fails its checksum."""
    name = Path(path).name
    try:
        data = json.loads(Path(path).read_text())
        body = {k: v for k, v in data.items() if k != "checksum"}
        checksum = data["checksum"]
    except FileNotFoundError:
        raise damaged(f"{name} is missing") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise damaged(f"{name} is unreadable ({err})") from None
    if json_checksum(body) != checksum:
        raise damaged(f"{name} does not match its checksum")
    return body


#: Blocks of a file that :func:`sampled_crcs` checks, and their size.
CRC_SAMPLES = 16
CRC_SAMPLE_BYTES = 4096


def sampled_crcs(path: str | os.PathLike, size: int) -> list[int]:
    """CRC32 of :data:`CRC_SAMPLES` blocks spread over the first ``size`` bytes of a file,
    first and last included (the whole file up to 64 KiB): a check of a large file that
    costs a few reads, so that mapping it stays cheap. A damaged byte between the blocks
    is not seen."""
    if size == 0:
        return []
    starts = sorted(
        {(size - CRC_SAMPLE_BYTES) * i // (CRC_SAMPLES - 1) for i in range(CRC_SAMPLES)}
    )
    out = []
    with open(path, "rb") as f:
        for start in starts:
            f.seek(max(0, start))
            out.append(zlib.crc32(f.read(min(CRC_SAMPLE_BYTES, size - max(0, start)))))
    return out


# Directory locks this process holds: path -> [open handle, depth]. flock locks belong to
# an open file description, so a second open() of the same .lock in this process would
# be refused; nested holders (the bench worker, then ``textgym train`` in the same
# process) share one handle instead.
_LOCKS: dict[str, list] = {}


@contextlib.contextmanager
def lock_dir(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on directory ``path`` (its ``.lock`` file) for the block.

    The kernel drops the lock when its holder dies, however it dies, so a killed run never
    leaves a stale lock. Re-entrant within a process.

    Raises:
        TextgymError: Another process holds the lock, or ``path/.lock`` cannot be created.
    """
    key = os.path.abspath(path)
    if key in _LOCKS:
        _LOCKS[key][1] += 1
        try:
            yield
        finally:
            _LOCKS[key][1] -= 1
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks
        yield
        return
    try:
        handle = open(os.path.join(key, ".lock"), "w")  # noqa: SIM115  (held for the block)
    except OSError as err:
        raise TextgymError(f"{key}: cannot create a lock file ({err.strerror or err})") from err
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        handle.close()
        raise TextgymError(
            f"{key} is being written by another process (it holds {key}/.lock); wait for it "
            "to finish or use another directory"
        ) from err
    _LOCKS[key] = [handle, 1]
    try:
        yield
    finally:
        del _LOCKS[key]
        handle.close()
