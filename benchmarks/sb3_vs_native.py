"""SB3 PPO with textgym's extractor against textgym's own PPO, on TextNER-v0 with MiniLM.

    python benchmarks/sb3_vs_native.py [--timesteps 2048] [--threads 1] [--device auto]
                                       [--conll N]

Both agents get the same env (TextNER-v0, its default kwargs or CoNLL-2003 with
``--conll``), the same encoder (the
packaged all-MiniLM-L6-v2, fine-tuned), the same rollout size, device, budget of env
steps and the PPO hyperparameters they share, taken from textgym's NER defaults
(``agents/hyperparams.yaml``): n_steps, batch_size, n_epochs, learning_rate, gamma,
gae_lambda, ent_coef, vf_coef, max_grad_norm, clip_range. Settings only textgym's PPO has
(``scale_advantage_by_value``) keep its defaults.

Measured: env-steps/s of ``learn()`` (rollouts and updates; env and model construction
excluded) and entity F1 on the whole validation split afterwards (``textgym.evaluate``).
Where the difference comes from: SB3 runs the encoder once per env step and once per
sample in every minibatch, so a tweet of 15 words is encoded 15 times per pass; textgym's
PPO encodes each sentence once per rollout and once per minibatch.

Prints a table and, last, the headline: textgym PPO env-steps/s / SB3 PPO env-steps/s.
Target: >= 10x at equal or better validation F1.

Measured on a 2-core CPU shared with a leaderboard run (``--threads 1``):

- default data (WNUT-16), 4096 steps: textgym PPO 106.8 env-steps/s, SB3 PPO 4.1, ratio
  26.2x; validation entity F1 0.000 vs 0.000 (4096 tweet words are too few for either);
- ``--conll 400 --timesteps 6144`` (CoNLL-2003, where PPO starts tagging entities within
  a few thousand steps): textgym PPO 68.0 env-steps/s, SB3 PPO 3.5, ratio 19.6x;
  validation entity F1 0.096 vs 0.000 (SB3's PPO has no value-scaled advantage and
  stays all-"O").
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _conll import conll_kwargs
from stable_baselines3 import PPO as SB3PPO
from textgym.agents import PPO, PPOSettings
from textgym.agents.common.hyperparams import default_hyperparams

import textgym
from textgym.sb3 import TextEncoderExtractor, make_sb3_vec_env

ENV_ID = "TextNER-v0"


def textgym_settings(args: argparse.Namespace) -> dict[str, Any]:
    """textgym's NER PPO defaults with the run's rollout size."""
    hparams = default_hyperparams(ENV_ID, "ppo")
    hparams.update(n_envs=args.n_envs, n_steps=args.n_steps)
    return hparams


def shared_sb3_kwargs(hparams: dict[str, Any]) -> dict[str, Any]:
    """The settings SB3's PPO also has, with textgym's values (its defaults filled in)."""
    settings = dataclasses.asdict(PPOSettings(**hparams))
    sb3_params = inspect.signature(SB3PPO.__init__).parameters
    names = (
        "n_steps",
        "batch_size",
        "n_epochs",
        "learning_rate",
        "gamma",
        "gae_lambda",
        "ent_coef",
        "vf_coef",
        "max_grad_norm",
        "clip_range",
        "clip_range_vf",
        "target_kl",
        "normalize_advantage",
    )
    return {name: settings[name] for name in names if name in sb3_params}


def run_textgym(args: argparse.Namespace, hparams: dict[str, Any]) -> dict[str, float]:
    model = PPO(
        ENV_ID,
        policy="minilm",
        seed=args.seed,
        device=args.device,
        env_kwargs=args.env_kwargs,
        **hparams,
    )
    start = time.perf_counter()
    model.learn(args.timesteps, progress_bar=False)
    seconds = time.perf_counter() - start
    return measure(model, model.num_timesteps, seconds, str(model.device), args.env_kwargs)


def run_sb3(args: argparse.Namespace, hparams: dict[str, Any]) -> dict[str, float]:
    env = make_sb3_vec_env(ENV_ID, hparams["n_envs"], **args.env_kwargs)
    model = SB3PPO(
        "MultiInputPolicy",
        env,
        seed=args.seed,
        device=args.device,
        policy_kwargs=dict(
            features_extractor_class=TextEncoderExtractor,
            # PPO is first-order: the fused attention kernels may run in updates too.
            features_extractor_kwargs=dict(encoder="minilm", double_backward=False),
        ),
        **shared_sb3_kwargs(hparams),
    )
    start = time.perf_counter()
    model.learn(args.timesteps)
    seconds = time.perf_counter() - start
    return measure(model, model.num_timesteps, seconds, str(model.device), args.env_kwargs)


def measure(
    model: Any, steps: int, seconds: float, device: str, env_kwargs: dict[str, Any]
) -> dict[str, float]:
    result = textgym.evaluate(model, ENV_ID, split="validation", **env_kwargs)
    return {
        "steps": steps,
        "seconds": seconds,
        "steps_per_s": steps / seconds,
        "f1": result.metrics["f1"],
        "device": device,
    }


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=2048, help="env steps per agent")
    parser.add_argument("--n-envs", type=int, default=32)
    parser.add_argument("--n-steps", type=int, default=32, help="steps per env per rollout")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--conll",
        type=int,
        default=0,
        metavar="N",
        help="CoNLL-2003 from ../shared/data instead of the default WNUT-16, validated on "
        "its first N validation sentences (0: the default data)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        args.env_kwargs = conll_kwargs(Path(tmp), validation=args.conll) if args.conll else {}
        return compare(args)


def compare(args: argparse.Namespace) -> float:
    hparams = textgym_settings(args)
    print(f"env {ENV_ID} {json.dumps(args.env_kwargs)}, encoder minilm")
    print(f"rollout {args.n_envs} envs x {args.n_steps} steps")
    print(f"budget {args.timesteps} steps, shared settings {shared_sb3_kwargs(hparams)}")

    print(f"{'agent':<12} {'device':<7} {'steps':>6} {'seconds':>8} {'steps/s':>8} {'val F1':>7}")
    results = {}
    for name, run in (("textgym PPO", run_textgym), ("SB3 PPO", run_sb3)):
        r = results[name] = run(args, hparams)
        print(
            f"{name:<12} {r['device']:<7} {r['steps']:>6} {r['seconds']:>8.1f} "
            f"{r['steps_per_s']:>8.1f} {r['f1']:>7.3f}",
            flush=True,
        )
    ours, sb3 = results["textgym PPO"], results["SB3 PPO"]
    ratio = ours["steps_per_s"] / sb3["steps_per_s"]
    print(
        f"textgym PPO / SB3 PPO env-steps/s: {ratio:.1f}x "
        f"(validation entity F1 {ours['f1']:.3f} vs {sb3['f1']:.3f})"
    )
    return ratio


if __name__ == "__main__":
    main()
