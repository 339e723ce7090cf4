"""Helpers for the leaderboard tests: synthetic summaries and subprocess environments."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

TINY_BENCH = Path(__file__).with_name("tiny_bench.yaml")

BASE_SUMMARY = {
    "env_id": "TextNER-v0",
    "env_kwargs": {"max_tokens": 32},
    "agent": "ppo",
    "policy": "tiny",
    "hyperparameters": {"learning_rate": 0.001},
    "seed": 0,
    "total_env_steps": 256,
    "wall_time_s": 12.5,
    "device": "cpu",
    "versions": {"textgym": "0.1.0"},
    "test_metrics": {"f1": 0.5, "accuracy": 0.9, "mean_reward": 10.0},
    "test_report": "",
    "validation_curve": [
        {"timesteps": 128, "f1": 0.2, "mean_reward": 8.0},
        {"timesteps": 256, "f1": 0.4, "mean_reward": 9.0},
    ],
}


def write_summary(root: Path, name: str, **changes) -> Path:
    """Write a summary.json under ``root/name`` made of BASE_SUMMARY with ``changes``."""
    summary = copy.deepcopy(BASE_SUMMARY)
    for key, value in changes.items():
        if isinstance(value, dict) and key == "test_metrics":
            summary[key] = {**summary[key], **value}
        else:
            summary[key] = value
    path = root / name / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary))
    return path


def subprocess_env() -> dict[str, str]:
    """One torch thread per process: on a shared 2-core machine more threads only spin."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def make_runs(root: Path) -> None:
    """Two specs of TextNER-v0, three agents, a classification table."""
    for seed in range(3):
        write_summary(
            root,
            f"ner/ppo/seed{seed}",
            seed=seed,
            wall_time_s=5.0 * (seed + 1),
            test_metrics={"f1": 0.3 + seed / 10},
        )
        write_summary(
            root,
            f"ner/supervised/seed{seed}",
            seed=seed,
            agent="supervised",
            total_env_steps=4000,
            wall_time_s=100.0,
            test_metrics={"f1": 0.7 + seed / 100},
            validation_curve=[{"timesteps": 4000, "f1": 0.7, "mean_reward": 12.0}],
        )
        write_summary(
            root,
            f"ner/random/seed{seed}",
            seed=seed,
            agent="random",
            policy=None,
            total_env_steps=0,
            wall_time_s=0.5,
            test_metrics={"f1": 0.01},
        )
    write_summary(root, "ner64/ppo/seed0", env_kwargs={"max_tokens": 64}, test_metrics={"f1": 0.2})
    write_summary(
        root,
        "cls/majority/seed0",
        env_id="TextClassification-v0",
        env_kwargs={},
        agent="majority",
        test_metrics={"accuracy": 0.23},
    )
