"""sb3-contrib MaskablePPO writes BBC headlines by copying words of the article.

Each step emits one token; the episode ends on EOS or after ``--max-summary-tokens``, and
the last step is rewarded with ROUGE-L against the real headline. With
``constraint="source"`` the env allows only the article's own tokens plus EOS, and
``action_masks()`` says which: MaskablePPO reads the masks (through ``env_method``) and
never samples a forbidden token, so the policy chooses among ~100 tokens instead of
30522. ``TextEncoderExtractor`` embeds the article and the last emitted tokens. The
dense reward mode pays each token its ROUGE gain.

SB3's policy scores all 30522 tokens with one linear layer and learns each token's
value only when it samples it, so this budget teaches it little: sampled summaries
score about what random copying does, and greedy decoding of a barely trained policy
tends to pick EOS first (the only token allowed in every state), an empty summary. The
example shows the masking; textgym's own agents use a pointer-generator head for this
task.

    python examples/sb3_maskable_ppo_summarization.py          # ~3 min on a laptop CPU
"""

from __future__ import annotations

import argparse

import torch
from sb3_contrib import MaskablePPO

import textgym
from textgym.sb3 import TextEncoderExtractor, make_sb3_vec_env

ENV_ID = "TextSummarization-v0"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=8_192, help="env steps (= tokens)")
    parser.add_argument("--n-envs", type=int, default=16)
    parser.add_argument("--n-steps", type=int, default=32, help="steps per env per rollout")
    parser.add_argument("--encoder", default="tiny", help="tiny | minilm | a Hugging Face name")
    parser.add_argument("--max-source-tokens", type=int, default=64)
    parser.add_argument("--max-summary-tokens", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    env_kwargs = {
        "max_source_tokens": args.max_source_tokens,
        "max_summary_tokens": args.max_summary_tokens,
        "constraint": "source",
        "rouge": "rougeL",
        "reward_mode": "dense",
    }
    env = make_sb3_vec_env(ENV_ID, args.n_envs, **env_kwargs)
    model = MaskablePPO(
        "MultiInputPolicy",
        env,
        n_steps=args.n_steps,
        batch_size=128,
        n_epochs=2,
        learning_rate=args.learning_rate,
        ent_coef=0.01,
        seed=args.seed,
        verbose=1,
        policy_kwargs=dict(
            features_extractor_class=TextEncoderExtractor,
            features_extractor_kwargs=dict(encoder=args.encoder),
        ),
    )
    model.learn(args.timesteps)

    # evaluate() passes the env's action_masks() to predict(), which takes them.
    greedy = textgym.evaluate(model, ENV_ID, split="test", **env_kwargs)

    def sample(obs, action_masks):
        return model.predict(obs, action_masks=action_masks, deterministic=False)[0]

    sampled = textgym.evaluate(sample, ENV_ID, split="test", **env_kwargs)
    for g, s in zip(greedy.predictions[:3], sampled.predictions[:3], strict=True):
        print(
            f"reference: {g['reference']}\ngreedy:    {g['summary']}\nsampled:   {s['summary']}\n"
        )
    for name, result in (("sampled", sampled), ("greedy", greedy)):
        rouge = result.metrics
        print(
            f"test ROUGE-1 {rouge['rouge1']:.3f}  ROUGE-2 {rouge['rouge2']:.3f}  "
            f"ROUGE-L {rouge['rougeL']:.3f}  ({name} decoding)"
        )
    return greedy.metrics["rougeL"]


if __name__ == "__main__":
    main()
