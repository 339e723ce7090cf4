"""Registering the envs with Gymnasium (string entry points: nothing heavy is imported)."""

from __future__ import annotations

import gymnasium as gym

#: Each env's default kwargs, registered in its spec so that ``env.spec.kwargs`` (and
#: every run summary built from it) records the full configuration, not only overrides.
DEFAULT_KWARGS = {
    "TextNER-v0": {
        "dataset": None,
        "split": "train",
        "tokenizer": None,
        "obs_dtype": "compact",
        "max_tokens": 64,
        "reward_mode": "token",
    },
    "TextClassification-v0": {
        "dataset": None,
        "split": "train",
        "tokenizer": None,
        "obs_dtype": "compact",
        "max_tokens": 128,
    },
    "TextSummarization-v0": {
        "dataset": None,
        "split": "train",
        "tokenizer": None,
        "obs_dtype": "compact",
        "max_source_tokens": 256,
        "max_summary_tokens": 24,
        "rouge": "rougeL",
        "reward_mode": "final",
        "constraint": "none",
    },
}

#: Every env id textgym registers, with its entry points.
ENV_IDS = {
    "TextNER-v0": "ner:TextNEREnv",
    "TextClassification-v0": "classification:TextClassificationEnv",
    "TextSummarization-v0": "summarization:TextSummarizationEnv",
}


def register_envs() -> None:
    """Register every textgym env id (idempotent)."""
    for env_id, target in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        module, cls = target.split(":")
        gym.register(
            id=env_id,
            entry_point=f"textgym.envs.{module}:{cls}",
            vector_entry_point=f"textgym.envs.{module}:{cls.replace('Env', 'VectorEnv')}",
            kwargs=dict(DEFAULT_KWARGS[env_id]),
            disable_env_checker=False,
        )
