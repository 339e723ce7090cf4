"""One run of a bench, in its own process: ``python -m textgym.leaderboard.worker RUN_DIR``.

The run directory's ``run.json`` (a :class:`~textgym.leaderboard.config.RunSpec`) says
what to run. RL agents go through ``textgym train`` (``textgym.agents.cli``) in this
process, always with ``--resume``: a run interrupted after a checkpoint continues from
it, one interrupted before its first checkpoint starts over. Baselines go through
:func:`textgym.leaderboard.baselines.run_baseline`. Either way the last file written is
``summary.json``, atomically: its presence means the run is finished.

An exclusive ``flock`` on ``RUN_DIR/.lock`` keeps two processes (say a worker orphaned
by a killed bench, and the rerun) from writing the same run; the kernel drops the lock
when its holder dies, however it dies.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from textgym.errors import TextgymError
from textgym.io import lock_dir
from textgym.leaderboard.config import RunSpec
from textgym.leaderboard.io import RUN_SPEC, SUMMARY, atomic_write_json, read_summary

PARENT_ENV = "TEXTGYM_BENCH_PARENT"


def is_finished(spec: RunSpec, run_dir: Path) -> bool:
    """A valid ``summary.json`` of this very run (env, agent, seed and eval split)."""
    summary, _ = read_summary(run_dir / SUMMARY)
    return (
        summary is not None
        and summary["env_id"] == spec.env_id
        and summary["agent"] == spec.algo
        and summary["seed"] == spec.seed
        and summary.get("eval_split", "test") == spec.eval_split
    )


def _die_with_parent() -> None:
    """Linux: be killed when the bench that started this worker dies (even by SIGKILL)."""
    parent = os.environ.get(PARENT_ENV)
    if parent is None or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):  # the bench died before prctl took effect
        os._exit(1)


def _train_rl(spec: RunSpec, run_dir: Path) -> None:
    from textgym.agents import cli as agents_cli

    parser = argparse.ArgumentParser(prog="textgym")
    agents_cli.register(parser.add_subparsers(dest="command", required=True))
    argv = [
        "train",
        spec.env_id,
        "--agent",
        spec.algo,
        "--policy",
        spec.policy,
        "--timesteps",
        str(spec.n_timesteps),
        "--seed",
        str(spec.seed),
        "--out",
        str(run_dir),
        "--device",
        spec.device,
        "--env-kwargs",
        json.dumps(spec.env_kwargs),
        "--hparams",
        json.dumps(spec.hyperparameters),
        "--no-progress",
        "--resume",
    ]
    if spec.checkpoint_freq is not None:
        argv += ["--checkpoint-freq", str(spec.checkpoint_freq)]
    print("textgym " + " ".join(argv), flush=True)
    args = parser.parse_args(argv)
    code = args.func(args)
    if code:
        raise TextgymError(f"textgym train exited with {code}")
    if spec.eval_split != "test":
        _reevaluate(run_dir, spec.eval_split, spec.device)


def _reevaluate(run_dir: Path, split: str, device: str) -> None:
    """Replace the test metrics ``textgym train`` recorded with those of ``split``."""
    from textgym.agents import ALGORITHMS

    summary, why = read_summary(run_dir / SUMMARY)
    if summary is None:
        raise TextgymError(f"{run_dir}: {why}")
    model = ALGORITHMS[summary["agent"]].load(run_dir / "model", device=device)
    result = model.evaluate(split)
    summary["eval_split"] = split
    summary["test_metrics"] = result.metrics | {"mean_reward": result.mean_return}
    summary["test_report"] = result.report
    atomic_write_json(run_dir / SUMMARY, summary)


def run(run_dir: str | os.PathLike) -> None:
    """Produce ``run_dir/summary.json`` from ``run_dir/run.json`` (no-op when finished)."""
    from textgym.leaderboard.baselines import BASELINES, Context, run_baseline

    run_dir = Path(run_dir)
    try:
        spec = RunSpec.from_json(json.loads((run_dir / RUN_SPEC).read_text()))
    except (OSError, json.JSONDecodeError, TypeError) as err:
        raise TextgymError(f"{run_dir}: no readable {RUN_SPEC} ({err})") from err
    with lock_dir(run_dir):
        if is_finished(spec, run_dir):
            return
        if spec.algo in BASELINES:
            ctx = Context(
                env_id=spec.env_id,
                env_kwargs=spec.env_kwargs,
                seed=spec.seed,
                policy=spec.policy,
                device=spec.device,
                run_dir=run_dir,
            )
            run_baseline(spec.algo, ctx, spec.eval_split, run_dir, **spec.hyperparameters)
        else:
            _train_rl(spec, run_dir)


def main(argv: list[str] | None = None) -> int:
    _die_with_parent()
    parser = argparse.ArgumentParser(prog="python -m textgym.leaderboard.worker")
    parser.add_argument("run_dir")
    args = parser.parse_args(argv)
    try:
        run(args.run_dir)
    except TextgymError as err:
        print(f"textgym: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
