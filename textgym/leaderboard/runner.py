"""``textgym bench``: run a config's env x agent x seed matrix, resumably, N runs at a time.

Layout: ``OUT/<env>/<agent>/seed<k>/`` per run, holding ``run.json`` (what to run),
``log.txt`` (the worker's output), the agent's checkpoints and logs, and finally
``summary.json``. ``OUT/bench.json`` records the config and the command.

Resume rules, applied on every invocation:

- a run with a valid ``summary.json`` of the same env, agent, seed and split is skipped;
- any other run is (re)started by a worker, which continues from its checkpoint if it
  has one;
- a run directory whose ``run.json`` differs from what the config now asks for is an
  error, before anything starts: its checkpoint or summary belongs to another setting.

Each run is a subprocess (``python -m textgym.leaderboard.worker``), so ``--workers N``
runs N at once and a crash in one run cannot take the others down; its torch gets
``cpu_count // N`` threads unless ``OMP_NUM_THREADS`` is set.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from textgym.errors import TextgymError
from textgym.leaderboard.config import RunSpec
from textgym.leaderboard.io import RUN_SPEC, atomic_write_json
from textgym.leaderboard.worker import PARENT_ENV, is_finished


@dataclass
class BenchResult:
    """What :func:`run_bench` did, as run keys (``env/agent/seed<k>``)."""

    skipped: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def select(runs: Sequence[RunSpec], patterns: Sequence[str] | None) -> list[RunSpec]:
    """The runs whose key matches one of the glob ``patterns`` (all runs when None)."""
    if not patterns:
        return list(runs)
    chosen = [r for r in runs if any(fnmatch.fnmatch(r.key, p) for p in patterns)]
    if not chosen:
        raise TextgymError(f"no run matches {list(patterns)}; keys look like {runs[0].key}")
    return chosen


def check_conflicts(runs: Sequence[RunSpec], out: Path) -> None:
    """Refuse to reuse a run directory that was started with another setting."""
    conflicts = []
    for spec in runs:
        path = spec.run_dir(out) / RUN_SPEC
        if not path.exists():
            continue
        try:
            old = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # unreadable: never written completely, so nothing was run from it
        new = spec.to_json()
        if old != new:
            keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            diff = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys)
            conflicts.append(f"  {spec.key} ({diff})")
    if conflicts:
        raise TextgymError(
            f"{out} holds runs started with other settings; use a fresh --out or delete them:\n"
            + "\n".join(conflicts)
        )


def _child_env(workers: int) -> dict[str, str]:
    env = dict(os.environ)
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, threads)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env[PARENT_ENV] = str(os.getpid())
    return env


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def run_bench(
    runs: Sequence[RunSpec],
    out: str | os.PathLike,
    workers: int = 1,
    progress: bool = True,
    record: dict | None = None,
) -> BenchResult:
    """Run every unfinished run of ``runs`` under ``out`` with up to ``workers`` at once.

    Args:
        runs: The matrix (:func:`textgym.leaderboard.config.load_config`).
        out: Root of the run directories.
        workers: Runs in parallel, each in its own process.
        progress: Show a tqdm bar over the whole matrix.
        record: Written to ``out/bench.json`` (the config and the command).

    Returns:
        Which runs were skipped, finished now, or failed (their ``log.txt`` says why).
    """
    from tqdm.auto import tqdm

    if workers < 1:
        raise TextgymError(f"--workers must be >= 1, got {workers}")
    out = Path(out)
    keys = [r.key for r in runs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise TextgymError(f"the config names these runs twice: {duplicates}")
    check_conflicts(runs, out)
    out.mkdir(parents=True, exist_ok=True)
    if record is not None:
        atomic_write_json(out / "bench.json", record)

    result = BenchResult()
    pending = []
    for spec in runs:
        (result.skipped if is_finished(spec, spec.run_dir(out)) else pending).append(spec)
    bar = tqdm(total=len(runs), initial=len(result.skipped), unit="run", disable=not progress)
    env = _child_env(workers)
    active: dict[str, tuple[subprocess.Popen, RunSpec]] = {}
    queue = list(pending)
    try:
        while queue or active:
            while queue and len(active) < workers:
                spec = queue.pop(0)
                run_dir = spec.run_dir(out)
                atomic_write_json(run_dir / RUN_SPEC, spec.to_json())
                with open(run_dir / "log.txt", "ab") as log:
                    active[spec.key] = (
                        subprocess.Popen(
                            [sys.executable, "-m", "textgym.leaderboard.worker", str(run_dir)],
                            stdin=subprocess.DEVNULL,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            env=env,
                        ),
                        spec,
                    )
                bar.set_postfix_str(", ".join(active), refresh=True)
            time.sleep(0.2)
            for key, (proc, spec) in list(active.items()):
                if proc.poll() is None:
                    continue
                del active[key]
                run_dir = spec.run_dir(out)
                if proc.returncode == 0 and is_finished(spec, run_dir):
                    result.finished.append(key)
                else:
                    result.failed.append(key)
                    bar.write(
                        f"run {key} failed (exit {proc.returncode}); {run_dir / 'log.txt'} ends:\n"
                        + _tail(run_dir / "log.txt")
                    )
                bar.update(1)
                bar.set_postfix_str(", ".join(active), refresh=True)
    finally:
        for proc, _ in active.values():  # interrupted: checkpoints stay, the rerun resumes
            proc.terminate()
        for proc, _ in active.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        bar.close()
    return result
