"""``textgym train`` and ``textgym eval``: registered on the textgym CLI by :func:`register`.

A run directory (``--out``) holds:

- ``checkpoint/``: weights, optimiser and RNG state, written atomically during training
  (``--resume`` continues from it);
- ``model/``: the final weights and config (``PPO.load(out / "model")``);
- ``progress.csv`` and TensorBoard event files;
- ``summary.json``: everything needed to reproduce and compare the run.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import gymnasium as gym

from textgym.errors import TextgymError

from .common.encoders import is_causal_lm
from .common.hyperparams import default_hyperparams
from .common.io import atomic_write_json, read_json, resolve_dir
from .common.on_policy import ALGORITHMS, OnPolicyAlgorithm, scalar_metrics


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``eval`` subcommands to the textgym CLI."""
    p = subparsers.add_parser("train", help="train an agent on an env and write a run directory")
    p.add_argument("env_id", help="e.g. TextNER-v0")
    p.add_argument("--agent", choices=sorted(ALGORITHMS), default="ppo")
    p.add_argument("--policy", default="minilm", help="minilm (default), tiny, or an HF name/path")
    p.add_argument("--timesteps", type=int, default=20_000, help="env steps to train for")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--env-kwargs", type=json.loads, default={}, help="env kwargs as JSON")
    p.add_argument("--hparams", type=json.loads, default={}, help="hyperparameters as JSON")
    p.add_argument("--n-envs", type=int, default=None, help="vector env slots")
    p.add_argument("--eval-freq", type=int, default=None, help="validation every N env steps")
    p.add_argument("--checkpoint-freq", type=int, default=None, help="checkpoint every N steps")
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=train_command)

    e = subparsers.add_parser("eval", help="evaluate a trained run directory on a split")
    e.add_argument("run_dir")
    e.add_argument("--split", default="test")
    e.add_argument("--device", default="auto")
    e.set_defaults(func=eval_command)


def _versions() -> dict[str, str]:
    import torch
    import transformers

    import textgym

    return {
        "textgym": textgym.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "gymnasium": gym.__version__,
        "python": platform.python_version(),
    }


def _full_env_kwargs(env_id: str, env_kwargs: dict) -> dict:
    """The registered defaults overlaid with the run's kwargs (what the env really used)."""
    return {**(gym.spec(env_id).kwargs or {}), **env_kwargs}


def _print_report(result: Any, split: str) -> None:
    print(f"\n{split} split: {result.num_episodes} examples, mean return {result.mean_return:.4f}")
    print(result.report)


def train_command(args: argparse.Namespace) -> int:
    import textgym  # noqa: F401  (registers the env ids)

    out = Path(args.out)
    checkpoint = out / "checkpoint"
    cls = ALGORITHMS[args.agent]
    if args.resume and resolve_dir(checkpoint).exists():
        model = cls.load(checkpoint, device=args.device, log_dir=out)
        print(f"resuming {args.agent} from {checkpoint} at {model.num_timesteps} steps")
    else:
        hparams = default_hyperparams(args.env_id, args.agent)
        if is_causal_lm(args.policy):
            # the YAML's frozen encoder is for the default pointer policy; an LM's head is
            # its policy, so freezing it would leave nothing to learn
            hparams.pop("freeze_encoder", None)
        hparams |= args.hparams
        if args.n_envs is not None:
            hparams["n_envs"] = args.n_envs
        if args.eval_freq is not None:
            hparams["eval_freq"] = args.eval_freq
        hparams.setdefault("eval_freq", max(args.timesteps // 5, 1))
        model = cls(
            args.env_id,
            policy=args.policy,
            seed=args.seed,
            device=args.device,
            env_kwargs=args.env_kwargs,
            log_dir=out,
            **hparams,
        )
    freq = args.checkpoint_freq or max(args.timesteps // 10, 1)
    next_save = [(model.num_timesteps // freq + 1) * freq]

    def save_checkpoint(m: OnPolicyAlgorithm) -> None:
        if m.num_timesteps >= next_save[0]:
            m.save(checkpoint, training_state=True)
            next_save[0] = (m.num_timesteps // freq + 1) * freq

    remaining = args.timesteps - model.num_timesteps
    if remaining > 0:
        model.learn(
            remaining,
            progress_bar=not args.no_progress,
            callback=save_checkpoint,
            reset_num_timesteps=False,
        )
        model.save(checkpoint, training_state=True)
    model.save(out / "model")
    result = model.evaluate("test")
    _print_report(result, "test")
    summary = {
        "env_id": model.env_id,
        "env_kwargs": _full_env_kwargs(model.env_id, model.env_kwargs),
        "agent": model.name,
        "policy": model.policy.encoder_name,
        "hyperparameters": model.hyperparameters(),
        "seed": model.seed,
        "total_env_steps": model.num_timesteps,
        "wall_time_s": model.wall_time,
        "device": str(model.device),
        "versions": _versions(),
        "test_metrics": result.metrics | {"mean_reward": result.mean_return},
        "test_report": result.report,
        "validation_curve": model.eval_history,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_json(out / "summary.json", summary)
    model.logger.close()
    print(f"wrote {out / 'summary.json'}")
    return 0


def eval_command(args: argparse.Namespace) -> int:
    import textgym  # noqa: F401

    run = Path(args.run_dir)
    path = next(
        (
            p
            for p in (run / "model", run / "checkpoint", run)
            if resolve_dir(p).is_dir() and (resolve_dir(p) / "config.json").exists()
        ),
        None,
    )
    if path is None:
        raise TextgymError(f"{run}: no model/ or checkpoint/ with a config.json (not a run dir?)")
    algorithm = read_json(resolve_dir(path) / "config.json")["algorithm"]
    model = ALGORITHMS[algorithm].load(path, device=args.device)
    result = model.evaluate(args.split)
    _print_report(result, args.split)
    atomic_write_json(
        run / f"eval_{args.split}.json",
        {
            "split": args.split,
            "metrics": result.metrics,
            "scalars": scalar_metrics(result),
            "report": result.report,
        },
    )
    return 0
