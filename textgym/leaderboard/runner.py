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
``cpu_count // N`` threads unless ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set.
``--backend ray`` starts the same subprocess inside one Ray task per run
(:mod:`textgym.leaderboard.ray_backend`): the run directories, resume rules, locks and
files are the same, only the scheduling differs.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
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


def thread_env(threads: int, environ: Mapping[str, str]) -> dict[str, str]:
    """The thread settings of a worker: ``threads`` torch threads, unless ``environ`` (the
    driver's) sets ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS``, whose value then goes to
    both. Torch takes ``MKL_NUM_THREADS`` over ``OMP_NUM_THREADS`` where both are set, so
    ``OMP_NUM_THREADS=1`` alone must not leave MKL at the default (it ran 2 threads)."""
    default = (
        environ.get("OMP_NUM_THREADS") or environ.get("MKL_NUM_THREADS") or str(max(1, threads))
    )
    return {
        "OMP_NUM_THREADS": environ.get("OMP_NUM_THREADS") or default,
        "MKL_NUM_THREADS": environ.get("MKL_NUM_THREADS") or default,
        "TOKENIZERS_PARALLELISM": environ.get("TOKENIZERS_PARALLELISM", "false"),
    }


def child_env(threads: int) -> dict[str, str]:
    """The environment of a worker process: this one's, with :func:`thread_env`'s threads."""
    env = dict(os.environ) | thread_env(threads, os.environ)
    env[PARENT_ENV] = str(os.getpid())
    return env


def start_worker(run_dir: Path, env: dict[str, str], cwd: str | None = None) -> subprocess.Popen:
    """Start ``python -m textgym.leaderboard.worker RUN_DIR``, its output appended to
    ``RUN_DIR/log.txt``. Both backends run every run this way."""
    with open(run_dir / "log.txt", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "textgym.leaderboard.worker", str(run_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )


def stop_workers(procs: Sequence[subprocess.Popen], grace_s: float = 30.0) -> None:
    """SIGTERM the workers still running, SIGKILL those left after ``grace_s``.

    An interrupted run keeps its checkpoints, and the rerun resumes from them.
    """
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        proc.terminate()
    deadline = time.monotonic() + grace_s
    for proc in running:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a run's ``log.txt``, indented, for a failure message."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def prepare(
    runs: Sequence[RunSpec], out: Path, record: dict | None
) -> tuple[BenchResult, list[RunSpec]]:
    """Check the matrix against ``out``, write ``bench.json``, and split the runs into
    those already finished (in the result's ``skipped``) and those to run."""
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
    return result, pending


def record_outcome(
    result: BenchResult, spec: RunSpec, out: Path, returncode: int | None, why: str, bar
) -> None:
    """File an ended run under ``finished`` (exit 0 and a valid summary) or ``failed``.

    ``why`` says what happened when the worker could not report an exit status (a Ray
    task that died); ``bar`` is the tqdm bar the failure is written through.
    """
    run_dir = spec.run_dir(out)
    if returncode == 0 and is_finished(spec, run_dir):
        result.finished.append(spec.key)
    else:
        result.failed.append(spec.key)
        how = why or f"exit {returncode}"
        bar.write(
            f"run {spec.key} failed ({how}); {run_dir / 'log.txt'} ends:\n"
            + tail(run_dir / "log.txt")
        )
    bar.update(1)


def run_bench(
    runs: Sequence[RunSpec],
    out: str | os.PathLike,
    workers: int | None = 1,
    progress: bool = True,
    record: dict | None = None,
    backend: str = "local",
    address: str | None = None,
) -> BenchResult:
    """Run every unfinished run of ``runs`` under ``out``.

    Args:
        runs: The matrix (:func:`textgym.leaderboard.config.load_config`).
        out: Root of the run directories.
        workers: Runs at once. Local backend: worker processes (None means 1). Ray
            backend: tasks in flight (None: every run is submitted and the cluster's
            free CPUs and GPUs decide, given each run's ``resources``).
        progress: Show a tqdm bar over the whole matrix.
        record: Written to ``out/bench.json`` (the config and the command).
        backend: ``local`` (subprocesses on this machine) or ``ray``
            (:mod:`textgym.leaderboard.ray_backend`, one Ray task per run).
        address: Ray only: the cluster to connect to; None starts a local Ray.

    Returns:
        Which runs were skipped, finished now, or failed (their ``log.txt`` says why).
    """
    if workers is not None and workers < 1:
        raise TextgymError(f"--workers must be >= 1, got {workers}")
    if backend not in ("local", "ray"):
        raise TextgymError(f"unknown backend {backend!r}; choose local or ray")
    if address is not None and backend != "ray":
        raise TextgymError("--address names a Ray cluster: it needs --backend ray")
    if backend == "ray":
        from textgym.leaderboard.ray_backend import import_ray, run_on_ray

        import_ray()  # a missing Ray fails before anything is written
    out = Path(out)
    result, pending = prepare(runs, out, record)
    if backend == "ray":
        return run_on_ray(result, pending, out, workers, progress, address, total=len(runs))
    return _run_local(result, pending, out, workers or 1, progress, total=len(runs))


def _run_local(
    result: BenchResult,
    pending: list[RunSpec],
    out: Path,
    workers: int,
    progress: bool,
    total: int,
) -> BenchResult:
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=len(result.skipped), unit="run", disable=not progress)
    env = child_env((os.cpu_count() or 1) // workers)
    active: dict[str, tuple[subprocess.Popen, RunSpec]] = {}
    queue = list(pending)
    try:
        while queue or active:
            while queue and len(active) < workers:
                spec = queue.pop(0)
                run_dir = spec.run_dir(out)
                atomic_write_json(run_dir / RUN_SPEC, spec.to_json())
                active[spec.key] = (start_worker(run_dir, env), spec)
                bar.set_postfix_str(", ".join(active), refresh=True)
            time.sleep(0.2)
            for key, (proc, spec) in list(active.items()):
                if proc.poll() is None:
                    continue
                del active[key]
                record_outcome(result, spec, out, proc.returncode, "", bar)
                bar.set_postfix_str(", ".join(active), refresh=True)
    finally:
        stop_workers([proc for proc, _ in active.values()])
        bar.close()
    return result
