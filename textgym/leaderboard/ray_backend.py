"""``textgym bench --backend ray``: the same runs as the local backend, scheduled by Ray.

Each run is one Ray task that reserves the run's ``resources`` (``num_cpus``,
``num_gpus``) and starts, on whichever node Ray picks, the very subprocess the local
backend starts (``python -m textgym.leaderboard.worker RUN_DIR``, output appended to
``RUN_DIR/log.txt``). So the run directories, ``run.json``, ``summary.json``, the resume
rules, the atomic writes and the per-run lock are those of :mod:`textgym.leaderboard.runner`;
only where and when a run starts differs. Every node must see ``--out`` at the same
absolute path (a shared filesystem): the driver writes ``run.json`` there and reads the
summaries back.

Interruption: Ctrl-C or SIGTERM of the driver cancels the tasks; a running task stops
its worker as the local backend does (SIGTERM, SIGKILL after 30 s) and the checkpoints
stay. A driver killed outright takes its tasks down with it: Ray kills the workers of a
job whose driver died (and a local Ray started by the driver dies with it), and a worker
subprocess dies with its task's process (``PR_SET_PDEATHSIG``). The kernel then drops the
run's lock, so the rerun finds no stale lock; a task of the rerun that still finds the
lock held waits a while for the dying holder before the worker reports it.

Ray is imported only here, and this module only with ``--backend ray``.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from textgym.errors import TextgymError
from textgym.leaderboard.config import RunSpec
from textgym.leaderboard.io import RUN_SPEC, atomic_write_json
from textgym.leaderboard.runner import (
    BenchResult,
    record_outcome,
    start_worker,
    stop_workers,
    thread_env,
)
from textgym.leaderboard.worker import PARENT_ENV

# A run whose task or node dies (not the run failing) is retried this often; it resumes
# from its checkpoint like any rerun.
MAX_RETRIES = 2
# How long a task waits for a run's lock held by a worker that is still being killed (its
# driver died and Ray is reaping the job), before the worker fails with the holder named.
LOCK_WAIT_S = 60.0
# How long the driver waits for cancelled tasks to stop their workers gracefully.
CANCEL_WAIT_S = 40.0


def import_ray() -> Any:
    """``import ray``, or a clear error naming the extra that installs it."""
    try:
        import ray
    except ImportError as err:
        raise TextgymError(
            "--backend ray needs Ray, which is not installed: pip install 'textgym[ray]'"
        ) from err
    return ray


def worker_env(spec: RunSpec, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a run's task sets in its worker's environment, from the driver's ``environ``.

    Threads: the driver's ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``, else one torch thread
    per reserved CPU (as the local backend gives each of its workers a share of the CPUs).
    A run that reserves no GPU sees none (``CUDA_VISIBLE_DEVICES=""``): recent Ray leaves
    a zero-GPU task every GPU of its node, and ``device: auto`` would take one unreserved.
    """
    environ = os.environ if environ is None else environ
    env = thread_env(int(spec.resources["cpus"]), environ)
    if spec.resources["gpus"] == 0:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _wait_for_lock(run_dir: Path, timeout_s: float) -> None:
    """Return once no process holds ``run_dir/.lock`` (or after ``timeout_s``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no advisory locks on this platform
        return
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with open(run_dir / ".lock", "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return  # closing the handle releases the probe's lock
        except OSError:
            if time.monotonic() >= deadline:
                return  # the worker itself reports who holds it
        time.sleep(0.5)


def run_task(run_dir: str, env_vars: dict[str, str], cwd: str) -> dict[str, Any]:
    """The body of a run's Ray task: the local backend's worker subprocess, on this node.

    Args:
        run_dir: Absolute path of the run directory (on the shared filesystem).
        env_vars: Set in the worker's environment (:func:`worker_env`).
        cwd: The driver's working directory, where relative ``data_dir`` paths point.

    Returns:
        ``{"returncode": int | None, "why": str, "node": str}``; ``returncode`` is None
        when the worker could not start (``why`` says why).
    """
    node = socket.gethostname()
    path = Path(run_dir)
    if not (path / RUN_SPEC).is_file():
        return {
            "returncode": None,
            "why": f"{path / RUN_SPEC} is not visible on node {node}: every node must "
            "see --out at the same path (a shared filesystem)",
            "node": node,
        }
    _wait_for_lock(path, LOCK_WAIT_S)
    env = {**os.environ, **env_vars, PARENT_ENV: str(os.getpid())}
    gpus = env.get("CUDA_VISIBLE_DEVICES")
    with open(path / "log.txt", "a", encoding="utf-8") as log:
        log.write(
            f"textgym bench: Ray task on node {node} (pid {os.getpid()}"
            + (f", CUDA_VISIBLE_DEVICES={gpus}" if gpus else "")
            + ")\n"
        )
    proc = start_worker(path, env, cwd if os.path.isdir(cwd) else None)
    try:
        # Poll rather than wait(): Ray cancels a task by raising KeyboardInterrupt in it,
        # which a sleep lets through and a blocking waitpid would not.
        while proc.poll() is None:
            time.sleep(0.2)
    finally:
        stop_workers([proc])
    return {"returncode": proc.returncode, "why": "", "node": node}


def _connect(ray: Any, address: str | None) -> bool:
    """Connect to ``address``, or start a local Ray; True when this call started it."""
    if ray.is_initialized():
        return False
    try:
        if address is None:
            ray.init(address="local", include_dashboard=False)
        else:
            ray.init(address=address)
    except Exception as err:  # Ray raises bare Exceptions too (a node that timed out)
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise TextgymError(f"cannot start or reach {where}: {err}") from err
    return True


def unfit(runs: list[RunSpec], nodes: list[dict[str, float]]) -> list[str]:
    """The runs whose ``resources`` no node of ``nodes`` (Ray's per-node totals) can hold."""
    return [
        f"{spec.key} (cpus={spec.resources['cpus']}, gpus={spec.resources['gpus']})"
        for spec in runs
        if not any(
            node.get("CPU", 0) >= spec.resources["cpus"]
            and node.get("GPU", 0) >= spec.resources["gpus"]
            for node in nodes
        )
    ]


def _check_fit(ray: Any, runs: list[RunSpec], started: bool) -> None:
    """Fail (a Ray of our own) or warn (a cluster, which may scale up) on runs that no
    node can hold: Ray would wait for such a node forever."""
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    misfits = unfit(runs, nodes)
    if not misfits:
        return
    sizes = ", ".join(f"cpus={n.get('CPU', 0):g} gpus={n.get('GPU', 0):g}" for n in nodes)
    message = (
        f"no node of the Ray cluster ({sizes}) has the resources of "
        + ", ".join(misfits[:5])
        + (f" and {len(misfits) - 5} more" if len(misfits) > 5 else "")
    )
    if started:
        raise TextgymError(message + "; lower the config's resources")
    print(f"textgym bench: warning: {message}; they wait for such a node", file=sys.stderr)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _failure(err: Exception) -> str:
    first = str(err).strip().splitlines()
    return f"Ray: {type(err).__name__}" + (f": {first[0]}" if first else "")


def run_on_ray(
    result: BenchResult,
    pending: list[RunSpec],
    out: Path,
    workers: int | None,
    progress: bool,
    address: str | None,
    total: int,
) -> BenchResult:
    """Run ``pending`` as Ray tasks (at most ``workers`` in flight when given).

    Called by :func:`textgym.leaderboard.runner.run_bench` after it has checked the
    matrix against ``out`` and filed the finished runs in ``result``.
    """
    from tqdm.auto import tqdm

    ray = import_ray()
    if not pending:
        return result  # everything is done: no Ray to start
    out = out.absolute()
    cwd = os.getcwd()
    started = _connect(ray, address)
    try:
        _check_fit(ray, pending, started)
    except TextgymError:
        if started:
            ray.shutdown()
        raise
    bar = tqdm(total=total, initial=len(result.skipped), unit="run", disable=not progress)
    task = ray.remote(max_retries=MAX_RETRIES)(run_task)
    active: dict[Any, RunSpec] = {}
    queue = list(pending)
    # SIGTERM stops the bench as Ctrl-C does (Ray's own handler would abort the driver
    # with a stack dump and leave the tasks to the job's cleanup).
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        while queue or active:
            while queue and (workers is None or len(active) < workers):
                spec = queue.pop(0)
                run_dir = spec.run_dir(out)
                atomic_write_json(run_dir / RUN_SPEC, spec.to_json())
                ref = task.options(
                    name=f"textgym-bench:{spec.key}",
                    num_cpus=spec.resources["cpus"],
                    num_gpus=spec.resources["gpus"],
                ).remote(str(run_dir), worker_env(spec), cwd)
                active[ref] = spec
            bar.set_postfix_str(f"{len(active)} submitted", refresh=True)
            done, _ = ray.wait(list(active), num_returns=1, timeout=1.0)
            for ref in done:
                spec = active.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as err:
                    record_outcome(result, spec, out, None, _failure(err), bar)
                else:
                    why = outcome["why"] or f"exit {outcome['returncode']} on {outcome['node']}"
                    record_outcome(result, spec, out, outcome["returncode"], why, bar)
    finally:
        if active:  # interrupted: each running task stops its worker; checkpoints stay
            refs = list(active)
            for ref in refs:
                ray.cancel(ref)
            _, left = ray.wait(refs, num_returns=len(refs), timeout=CANCEL_WAIT_S)
            for ref in left:
                ray.cancel(ref, force=True)
        bar.close()
        if started:
            ray.shutdown()
        if main_thread:  # None: a handler set outside Python (Ray's), gone with Ray
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    return result
