"""Registering the envs with Gymnasium (string entry points: nothing heavy is imported)."""

from __future__ import annotations

import gymnasium as gym

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
            disable_env_checker=False,
        )
