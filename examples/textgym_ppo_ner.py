"""textgym's own PPO on TextNER-v0: train, then score entity F1 on the test split.

    python examples/textgym_ppo_ner.py                       # MiniLM, WNUT-16 tweets
    python examples/textgym_ppo_ner.py --policy tiny --timesteps 2048

The defaults come from ``agents/hyperparams.yaml``: groups of 4 slots tag each sentence
with 4 different tags per word, and PPO's clipped steps raise the likelihood of the token
rewards each group observed (``objective="loglik"``), the lever docs/ner-from-reward.md
describes against the all-``O`` collapse. ``--n-envs`` must be a multiple of 4. With
small budgets the policy may still tag everything ``O`` (entity F1 0).
"""

from __future__ import annotations

import argparse

import torch
from textgym.agents import PPO
from textgym.agents.common.hyperparams import default_hyperparams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument(
        "--policy", default="minilm", help="minilm, tiny or a Hugging Face name/path"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--n-envs", type=int, default=None, help="vector env slots (default: YAML)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    hparams = default_hyperparams("TextNER-v0", "ppo")
    if args.n_envs is not None:
        hparams["n_envs"] = args.n_envs
    model = PPO(
        "TextNER-v0",
        policy=args.policy,
        seed=args.seed,
        env_kwargs={"max_tokens": args.max_tokens},
        **hparams,
    )
    model.learn(total_timesteps=args.timesteps, progress_bar=True)
    result = model.evaluate("test")
    print(result.report)
    print(f"test entity F1 {result.metrics['f1']:.4f}")


if __name__ == "__main__":
    main()
