"""The five agents on every env on a GPU: train, save, load, predict, evaluate.

    python benchmarks/cuda_check.py [--device cuda] [--updates 3] [--agents rloo ppo ...]
        [--envs TextNER-v0 ...] [--obs 64]

CI has no GPU, so the tests run every agent on the CPU only; this script is what shows the
agents on CUDA. For each env x agent (the defaults of ``agents/hyperparams.yaml``, the
default data, MiniLM) it

- trains ``--updates`` rollouts and updates on the device (the first is a warm-up) and
  times the rest: env steps/s;
- checks that every parameter of the policy is on the device and finite after training;
- saves the agent, loads it on the device and asserts that its deterministic actions on
  ``--obs`` fresh observations (seeded resets) are the trained agent's;
- loads the same checkpoint on the CPU and counts the actions that agree with the GPU's
  (a model trained on a GPU is served on a CPU): at least 95% must.

Then, per env, RLOO trains twice from the same seed and the script reports whether the two
runs' weights are bit-identical on this device (the CPU's are, ``tests/reliability``), and
an untrained RLOO agent's ``evaluate("validation")`` runs on the device.

Prints one line per run and, last, how many of the runs passed.

Measured 2026-12-04 on an NVIDIA H200 (torch 2.11.0+cu130, transformers 5.17.0), the
defaults: 15/15 runs passed, each reloaded agent's actions identical on the GPU and all 64
agreeing on the CPU. Env steps/s after the warm-up, NER / classification / summarization:
RLOO 4947 / 766 / 1760, GRPO 4933 / 475 / 1228, PPO 6736 / 1146 / 854, REINFORCE
2389 / 1505 / 1177, TRPO 1956 / 614 / 343. Same seed twice: NER and classification
bit-identical; summarization differs by at most 3.6e-7 (the pointer's copy distribution,
a ``scatter_add`` of source probabilities into the vocabulary, is summed by CUDA's atomic
adds in no fixed order; the CPU's runs are bit-identical). Untrained validation: NER F1
0.0015, accuracy 0.168, ROUGE-L 0.2045. The whole script: 66 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from textgym.agents import ALGORITHMS
from textgym.agents.common.hyperparams import default_hyperparams

import textgym  # noqa: F401

ENVS = ("TextNER-v0", "TextClassification-v0", "TextSummarization-v0")
AGENTS = ("rloo", "grpo", "ppo", "reinforce", "trpo")


def fresh_observations(env_id: str, n: int) -> dict[str, np.ndarray]:
    """The first observations of ``n`` seeded episodes, stacked as a batch."""
    env = gym.make(env_id)
    rows = [env.reset(seed=i)[0] for i in range(n)]
    env.close()
    return {key: np.stack([row[key] for row in rows]) for key in rows[0]}


def make(env_id: str, agent: str, device: str, seed: int = 0):
    hparams = default_hyperparams(env_id, agent) | {"eval_freq": 0}
    return ALGORITHMS[agent](env_id, seed=seed, device=device, **hparams)


def train(model, updates: int) -> tuple[float, int]:
    """``updates`` rollouts and updates; the steps/s of all but the first, and the steps."""
    model.learn(1, progress_bar=False)  # warm-up: kernels, allocator, autotuning
    before, start = model.num_timesteps, time.perf_counter()
    for _ in range(updates - 1):
        model.learn(model.num_timesteps + 1, progress_bar=False, reset_num_timesteps=False)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    steps = model.num_timesteps - before
    return steps / max(time.perf_counter() - start, 1e-9), model.num_timesteps


def check(env_id: str, agent: str, args: argparse.Namespace, obs: dict) -> tuple[bool, str]:
    model = make(env_id, agent, args.device)
    rate, steps = train(model, args.updates)
    params = list(model.policy.parameters())
    on_device = all(p.device.type == model.device.type for p in params)
    finite = all(bool(torch.isfinite(p).all()) for p in params)
    actions = model.predict(obs)[0]
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "agent")
        reloaded = type(model).load(Path(tmp) / "agent", device=args.device)
        same = np.array_equal(reloaded.predict(obs)[0], actions)
        on_cpu = type(model).load(Path(tmp) / "agent", device="cpu")
        agree = float(np.mean(on_cpu.predict(obs)[0] == actions))
    ok = on_device and finite and same and agree >= 0.95
    line = (
        f"{env_id:22s} {agent:9s} {steps:7d} steps {rate:8.1f} steps/s  "
        f"on device {on_device}  finite {finite}  reload identical {same}  "
        f"CPU agrees {agree:.3f}  {'ok' if ok else 'FAILED'}"
    )
    return ok, line


def same_seed(env_id: str, args: argparse.Namespace) -> str:
    runs = []
    for _ in range(2):
        model = make(env_id, "rloo", args.device)
        train(model, args.updates)
        runs.append({k: v.detach().cpu() for k, v in model.policy.state_dict().items()})
    diff = max(float((runs[0][k].float() - runs[1][k].float()).abs().max()) for k in runs[0])
    verdict = "bit-identical" if diff == 0 else f"differ, largest difference {diff:.3g}"
    return f"{env_id:22s} rloo      same seed twice: weights {verdict}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--updates", type=int, default=3, help="rollouts and updates per run")
    p.add_argument("--agents", nargs="+", default=list(AGENTS), choices=AGENTS)
    p.add_argument("--envs", nargs="+", default=list(ENVS), choices=ENVS)
    p.add_argument("--obs", type=int, default=64, help="fresh observations to predict on")
    args = p.parse_args()
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device: this script checks the agents on a GPU")
        print(f"device: {torch.cuda.get_device_name(args.device)}, torch {torch.__version__}")
    passed, total = 0, 0
    for env_id in args.envs:
        obs = fresh_observations(env_id, args.obs)
        for agent in args.agents:
            total += 1
            try:
                ok, line = check(env_id, agent, args, obs)
            except Exception as err:  # report and go on: one broken run hides no other
                ok, line = False, f"{env_id:22s} {agent:9s} FAILED: {type(err).__name__}: {err}"
            passed += ok
            print(line, flush=True)
        print(same_seed(env_id, args), flush=True)
        start = time.perf_counter()
        result = make(env_id, "rloo", args.device).evaluate("validation")
        print(
            f"{env_id:22s} rloo      evaluate('validation') untrained: "
            f"{ {k: round(v, 4) for k, v in result.metrics.items() if isinstance(v, float)} } "
            f"in {time.perf_counter() - start:.1f}s",
            flush=True,
        )
    print(f"{passed}/{total} env x agent runs passed on {args.device}")


if __name__ == "__main__":
    main()
