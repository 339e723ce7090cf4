"""sb3-contrib TRPO tags named entities in tweets (WNUT-16), one word per step.

The observation holds the tweet's subword ids, where each word starts, which word is
being tagged and the tags chosen so far; ``TextEncoderExtractor`` reads the encoder states
at the current word and its neighbours plus the previous tag. The dense ``token`` reward
pays 1 per correct tag. The test metric is entity-level F1 (seqeval), which a tagger that
answers ``O`` everywhere (95% of the test words) scores 0 on, whatever its token accuracy.

Expect that collapse at the default budget: the tiny encoder starts from random
embeddings and policy-gradient updates of a rare tag vanish where the policy is wrong
(docs/ner-from-reward.md). TRPO's natural-gradient step is the lever against it,
but it needs far more steps, or a pretrained encoder, than a few CPU minutes allow.

    python examples/sb3_trpo_ner.py                      # ~3 min on a laptop CPU
    python examples/sb3_trpo_ner.py --encoder minilm     # pretrained; far slower per step
"""

from __future__ import annotations

import argparse

import torch
from sb3_contrib import TRPO

import textgym
from textgym.sb3 import TextEncoderExtractor, make_sb3_vec_env

ENV_ID = "TextNER-v0"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=32_768, help="env steps (= words)")
    parser.add_argument("--n-envs", type=int, default=16)
    parser.add_argument("--n-steps", type=int, default=32, help="steps per env per rollout")
    parser.add_argument("--encoder", default="tiny", help="tiny | minilm | a Hugging Face name")
    parser.add_argument("--max-tokens", type=int, default=48, help="subwords per tweet")
    parser.add_argument("--target-kl", type=float, default=0.02, help="trust-region size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    env_kwargs = {"max_tokens": args.max_tokens, "reward_mode": "token"}
    env = make_sb3_vec_env(ENV_ID, args.n_envs, **env_kwargs)
    model = TRPO(
        "MultiInputPolicy",
        env,
        n_steps=args.n_steps,
        batch_size=args.n_steps * args.n_envs,  # one natural-gradient step per rollout
        gamma=0.0,  # a tag's reward does not depend on later tags
        target_kl=args.target_kl,
        cg_max_steps=10,
        seed=args.seed,
        verbose=1,
        policy_kwargs=dict(
            features_extractor_class=TextEncoderExtractor,
            # sb3-contrib's TRPO differentiates the KL once per parameter tensor and then
            # twice, so every attention layer multiplies the update cost (a 1-layer tiny
            # transformer: 20x). The tiny encoder without layers embeds each word with its
            # neighbours and costs ~5 s per 1k steps.
            features_extractor_kwargs=dict(encoder=args.encoder, tiny_layers=0),
        ),
    )
    model.learn(args.timesteps)

    result = textgym.evaluate(model, ENV_ID, split="test", **env_kwargs)
    print(result.report)
    m = result.metrics
    print(
        f"test entity F1 {m['f1']:.3f}  precision {m['precision']:.3f}  "
        f"recall {m['recall']:.3f}  token accuracy {m['accuracy']:.3f}"
    )
    return m["f1"]


if __name__ == "__main__":
    main()
