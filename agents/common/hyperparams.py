"""Per-env default hyperparameters from the packaged ``hyperparams.yaml``."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml


def _table() -> dict[str, Any]:
    text = resources.files("textgym.agents").joinpath("hyperparams.yaml").read_text()
    return yaml.safe_load(text) or {}


def default_agent(env_id: str | None) -> str:
    """The agent ``textgym train`` uses for ``env_id`` when ``--agent`` is not given: the
    YAML's ``default_agent`` for the env, else PPO."""
    entry = _table().get(env_id) or {}
    return entry.get("default_agent") or "ppo"


def default_hyperparams(env_id: str | None, agent: str) -> dict[str, Any]:
    """The YAML's entry for ``env_id`` x ``agent`` ({} when there is none).

    Keys set to null are dropped (they mark settings an algorithm does not have, left
    over from a YAML anchor).
    """
    entry = (_table().get(env_id) or {}).get(agent) or {}
    return {k: v for k, v in entry.items() if v is not None}
