"""REINFORCE on a textgym vector env in plain PyTorch: no agent library, no textgym agent code.

Everything an agent needs is the public interface: ``gymnasium.make_vec`` (textgym's
native batched env, here in same-step autoreset mode), the ``Dict`` observation of int token ids, the
``Discrete`` action space, and ``textgym.evaluate`` for the test metric. The loop follows
cleanrl's layout: settings, a small policy, then collect -> returns -> update.

Same-step autoreset, the one subtle part: when slot ``i`` finishes at step ``t``,
``rewards[t, i]`` is the finished episode's last reward and ``obs`` returned by that step
is already the next episode's first observation, so returns must not flow across ``t``:
``G[t] = r[t] + gamma * G[t+1] * (1 - done[t])``.

    python examples/custom_loop.py                                   # classification, ~2 min
    python examples/custom_loop.py --env-id TextNER-v0 --gamma 0     # one step per word

On NER this plain REINFORCE collapses to tagging every word ``O`` (entity F1 0): the
gradient of a rare tag vanishes where the policy is wrong (docs/ner-from-reward.md); textgym's
agents and TRPO address that.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from torch import nn

import textgym


@dataclass
class Args:
    env_id: str = "TextClassification-v0"
    """TextClassification-v0 or TextNER-v0."""
    num_envs: int = 32
    """Episodes stepped side by side."""
    num_steps: int = 16
    """Steps per env per rollout (a rollout is num_envs * num_steps env steps)."""
    total_timesteps: int = 30_000
    """Env steps to train for."""
    learning_rate: float = 3e-3
    gamma: float = 0.99
    """Discount (0: each step's own reward, right for NER's per-word reward)."""
    ent_coef: float = 0.01
    """Entropy bonus: keeps rare actions (entity tags) alive a while longer."""
    max_tokens: int = 64
    seed: int = 0


class Policy(nn.Module):
    """Mean of the document's token embeddings; for NER also the current word and last tag."""

    def __init__(self, space: gym.spaces.Dict, n_actions: int, dim: int = 64):
        super().__init__()
        self.tokens = nn.Embedding(int(space["input_ids"].high.max()) + 1, dim)
        self.ner = "word_index" in space.spaces
        in_dim = dim
        if self.ner:  # tag ids, plus len(labels) for "not tagged yet"
            self.tags = nn.Embedding(int(space["tags"].high.max()) + 1, dim)
            in_dim = 3 * dim
        self.head = nn.Sequential(nn.Linear(in_dim, 128), nn.Tanh(), nn.Linear(128, n_actions))

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.distributions.Categorical:
        mask = obs["attention_mask"].unsqueeze(-1).float()  # (B, L, 1)
        emb = self.tokens(obs["input_ids"])  # (B, L, dim)
        x = (emb * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B, dim)
        if self.ner:
            index = obs["word_index"]  # (B, 1)
            word = obs["word_starts"].gather(1, index.clamp(max=obs["word_starts"].shape[1] - 1))
            previous = obs["tags"].gather(1, (index - 1).clamp(min=0))
            previous = torch.where(index == 0, self.tags.num_embeddings - 1, previous)
            word_emb = emb.gather(1, word.unsqueeze(-1).expand(-1, -1, emb.shape[-1]))
            x = torch.cat([x, word_emb.squeeze(1), self.tags(previous.squeeze(1))], dim=1)
        return torch.distributions.Categorical(logits=self.head(x))


def to_tensors(obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(np.asarray(v), dtype=torch.long) for k, v in obs.items()}


def discounted_returns(rewards: np.ndarray, dones: np.ndarray, gamma: float) -> np.ndarray:
    """``(T, N)`` rewards and done flags -> returns-to-go within each episode.

    Episodes still running at the end of the rollout are cut there (no bootstrap value:
    REINFORCE has no critic), which biases their returns down a little.
    """
    returns = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[1], np.float32)
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running * (1.0 - dones[t])
        returns[t] = running
    return returns


def parse_args(argv: list[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in vars(Args()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    return Args(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    env_kwargs = {"max_tokens": args.max_tokens}
    envs = gym.make_vec(
        args.env_id, num_envs=args.num_envs, autoreset_mode=AutoresetMode.SAME_STEP, **env_kwargs
    )
    policy = Policy(envs.single_observation_space, int(envs.single_action_space.n))
    optimizer = torch.optim.Adam(policy.parameters(), lr=args.learning_rate)

    obs, _ = envs.reset(seed=args.seed)
    b_rewards = np.zeros((args.num_steps, args.num_envs), np.float32)
    b_dones = np.zeros((args.num_steps, args.num_envs), np.float32)
    recent_returns: list[float] = []
    episode_return = np.zeros(args.num_envs)
    start, global_step = time.time(), 0
    while global_step < args.total_timesteps:
        b_log_probs, b_entropy = [], []
        for step in range(args.num_steps):
            dist = policy(to_tensors(obs))
            actions = dist.sample()
            b_log_probs.append(dist.log_prob(actions))
            b_entropy.append(dist.entropy())
            obs, rewards, terminated, truncated, _ = envs.step(actions.numpy())
            done = np.logical_or(terminated, truncated)
            b_rewards[step], b_dones[step] = rewards, done
            episode_return += rewards
            recent_returns.extend(episode_return[done].tolist())
            episode_return[done] = 0.0
        global_step += args.num_steps * args.num_envs

        returns = torch.as_tensor(discounted_returns(b_rewards, b_dones, args.gamma))
        advantages = (returns - returns.mean()) / (returns.std() + 1e-8)  # batch baseline
        log_probs, entropy = torch.stack(b_log_probs), torch.stack(b_entropy)  # (T, N)
        loss = -(log_probs * advantages).mean() - args.ent_coef * entropy.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if recent_returns:
            print(
                f"step {global_step:>7}  episode return {np.mean(recent_returns[-200:]):.3f}  "
                f"{global_step / (time.time() - start):.0f} steps/s"
            )

    @torch.no_grad()
    def greedy(batch: dict[str, np.ndarray]) -> np.ndarray:
        return policy(to_tensors(batch)).probs.argmax(-1).numpy()

    result = textgym.evaluate(greedy, args.env_id, split="test", **env_kwargs)
    print(result.report)
    name = "entity F1" if envs.unwrapped.task == "ner" else "accuracy"
    score = result.metrics["f1" if name == "entity F1" else "accuracy"]
    print(f"test {name} {score:.3f}")
    return score


if __name__ == "__main__":
    main()
