"""``textgym bench`` and ``textgym leaderboard``, registered on the textgym CLI by :func:`register`.

``python -m textgym.leaderboard bench ...`` runs the same commands as ``textgym bench ...``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from textgym.errors import TextgymError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` and ``leaderboard`` subcommands to the textgym CLI."""
    b = subparsers.add_parser(
        "bench", help="run a YAML matrix of env x agent x seed, resuming where it stopped"
    )
    b.add_argument("config", help="bench YAML (see benchmarks/leaderboard.yaml)")
    b.add_argument("--out", required=True, help="root of the run directories, e.g. runs/")
    b.add_argument(
        "--workers",
        type=int,
        default=None,
        help="runs at once: subprocesses (local, default 1) or tasks in flight (ray, "
        "default: all, as the cluster's CPUs/GPUs allow)",
    )
    b.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local: subprocesses on this machine; ray: one Ray task per run, with the "
        "resources its config entry asks for (pip install 'textgym[ray]')",
    )
    b.add_argument(
        "--address",
        help="with --backend ray: the cluster to connect to (host:port, 'auto' for the "
        "cluster of this node, ray://...); without it a local Ray is started",
    )
    b.add_argument(
        "--only",
        action="append",
        metavar="GLOB",
        help="run only the runs whose env/agent/seed<k> key matches (repeatable)",
    )
    b.add_argument("--dry-run", action="store_true", help="list the runs and their state")
    b.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    b.set_defaults(func=bench_command)

    lb = subparsers.add_parser(
        "leaderboard", help="render Markdown/JSON/HTML leaderboards and curves from run dirs"
    )
    lb.add_argument("runs", nargs="+", help="run directories or roots holding summary.json files")
    lb.add_argument("--out", required=True, help="output directory")
    lb.add_argument("--title", default="textgym leaderboard")
    lb.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples")
    lb.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the bootstrap RNG")
    lb.set_defaults(func=leaderboard_command)


def _command_line(argv: Sequence[str] | None = None) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    return "textgym " + " ".join(shlex.quote(a) for a in args)


def bench_command(args: argparse.Namespace) -> int:
    from textgym.leaderboard.config import load_config
    from textgym.leaderboard.runner import run_bench, select
    from textgym.leaderboard.worker import is_finished

    config = Path(args.config)
    runs = select(load_config(config), args.only)
    out = Path(args.out)
    if args.address is not None and args.backend != "ray":
        raise TextgymError("--address names a Ray cluster: it needs --backend ray")
    if args.dry_run:
        for spec in runs:
            state = "done" if is_finished(spec, spec.run_dir(out)) else "to run"
            line = f"{spec.key:50s} {spec.env_id:24s} {spec.algo:10s} {state}"
            if args.backend == "ray":
                line += f"  cpus={spec.resources['cpus']} gpus={spec.resources['gpus']}"
            print(line)
        return 0
    record = {
        "command": _command_line(),
        "config": str(config),
        "config_text": config.read_text(encoding="utf-8"),
        "runs": [spec.key for spec in runs],
        "backend": args.backend,
    }
    result = run_bench(
        runs,
        out,
        workers=args.workers,
        progress=not args.no_progress,
        record=record,
        backend=args.backend,
        address=args.address,
    )
    print(
        f"bench: {len(result.finished)} finished, {len(result.skipped)} already done, "
        f"{len(result.failed)} failed; results in {out}"
    )
    if result.failed:
        print("failed: " + ", ".join(result.failed), file=sys.stderr)
        return 1
    return 0


def _bench_command(roots: Sequence[str]) -> str | None:
    import json

    commands = set()
    for root in roots:
        path = Path(root) / "bench.json"
        try:
            commands.add(json.loads(path.read_text())["command"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return "; ".join(sorted(commands)) or None


def leaderboard_command(args: argparse.Namespace) -> int:
    from textgym.leaderboard.render import write_leaderboard
    from textgym.leaderboard.table import build

    for root in args.runs:
        if not Path(root).is_dir():
            raise TextgymError(f"{root}: not a directory")
    board = build(args.runs, n_resamples=args.resamples, seed=args.bootstrap_seed)
    if board.num_runs == 0:
        reasons = "".join(f"\n  {p}: {why}" for p, why in board.skipped)
        raise TextgymError(f"no finished runs (summary.json) under {', '.join(args.runs)}{reasons}")
    written = write_leaderboard(
        board,
        args.out,
        command=_command_line(),
        title=args.title,
        bench_command=_bench_command(args.runs),
    )
    for table in board.tables:
        best = next((r for r in table.rows if r.rank == 1), None)
        if best is not None and best.metric is not None:
            print(f"{table.env_id}: best {best.label} {table.metric_name} {best.metric.mean:.3f}")
    print(f"wrote {', '.join(str(p) for p in written.values())}")
    for path, why in board.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m textgym.leaderboard ...``: the same as ``textgym ...``."""
    from textgym.cli import main as textgym_main

    return textgym_main(argv)
