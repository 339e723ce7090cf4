"""What an agent reads from an env through the public interface, and how it gets a vector env.

Everything here works on textgym's native vector envs, on wrapped single envs and on
Gymnasium's ``SyncVectorEnv``: the documented attributes (``task``, ``labels``...), the
action masks (sb3-contrib's ``action_masks()``) and the final observations of same-step
autoreset.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from textgym.errors import TextgymError


def env_attr(env: Any, name: str) -> Any:
    """A documented env attribute from a native vector env, a wrapped env or a SyncVectorEnv."""
    for obj in (env, getattr(env, "unwrapped", env)):
        try:
            return getattr(obj, name)
        except AttributeError:
            pass
    return env.get_attr(name)[0]


def env_info(env: Any) -> dict[str, Any]:
    """The public facts a policy is built from."""
    obs_space = getattr(env, "single_observation_space", env.observation_space)
    act_space = getattr(env, "single_action_space", env.action_space)
    info = {
        "task": env_attr(env, "task"),
        "n_actions": int(act_space.n),
        "vocab_size": int(env_attr(env, "vocab_size")),
        "pad_token_id": int(env_attr(env, "pad_token_id")),
        "eos_token_id": int(env_attr(env, "eos_token_id")),
        "labels": list(env_attr(env, "labels")),
    }
    if "summary_ids" in obs_space.spaces:
        info["max_summary_tokens"] = int(obs_space["summary_ids"].shape[0])
    return info


def make_vector_env(env: Any, n_envs: int, env_kwargs: dict | None = None) -> gym.vector.VectorEnv:
    """A same-step-autoreset vector env from an env id, a single env or a vector env."""
    if isinstance(env, str):
        import textgym  # noqa: F401  (registers the ids)

        return gym.make_vec(
            env, num_envs=n_envs, autoreset_mode=AutoresetMode.SAME_STEP, **(env_kwargs or {})
        )
    if isinstance(env, gym.vector.VectorEnv):
        mode = env.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise TextgymError(
                f"the vector env's autoreset mode is {mode}; textgym agents need "
                "AutoresetMode.SAME_STEP: gymnasium.make_vec(env_id, num_envs=n, "
                "autoreset_mode=AutoresetMode.SAME_STEP) gives it for textgym ids"
            )
        return env
    if isinstance(env, gym.Env):
        return gym.vector.SyncVectorEnv([lambda: env], autoreset_mode=AutoresetMode.SAME_STEP)
    raise TextgymError(f"env must be an env id, a gymnasium Env or a VectorEnv, not {env!r}")


def env_spec(env: Any) -> tuple[str | None, dict]:
    """``(env id, kwargs)`` from a Gymnasium spec, when the env has one."""
    spec = getattr(env, "spec", None) or getattr(getattr(env, "unwrapped", None), "spec", None)
    if spec is None:
        return None, {}
    vector_only = ("num_envs", "vectorization_mode", "vector_kwargs", "wrappers", "autoreset_mode")
    return spec.id, {k: v for k, v in (spec.kwargs or {}).items() if k not in vector_only}


def action_masks(env: Any) -> np.ndarray:
    """``(num_envs, n_actions)`` bool masks from the env's ``action_masks()`` (sb3-contrib)."""
    fn = getattr(env, "action_masks", None) or getattr(env.unwrapped, "action_masks", None)
    if fn is not None:
        return np.asarray(fn(), dtype=bool)
    return np.stack(env.call("action_masks")).astype(bool)


def final_obs_rows(final_obs: Any, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Rows of ``infos["final_obs"]``: a dict of batched arrays (Dict spaces), or else an
    object array of per-slot observations."""
    if isinstance(final_obs, dict):
        return {k: np.asarray(v)[rows] for k, v in final_obs.items()}
    return {k: np.stack([final_obs[i][k] for i in rows]) for k in final_obs[rows[0]]}


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"``: CUDA when present, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def episode_step_bound(env: Any) -> int:
    """The most steps an episode of ``env`` can take, from its spec or its spaces.

    A spec's ``max_episode_steps`` when set; else, for textgym's tasks, one step per
    word slot (NER, ``word_mask``), one per summary token (``summary_ids``), or one
    (classification). Group rollouts size their buffer with it.
    """
    spec = getattr(env, "spec", None) or getattr(getattr(env, "unwrapped", None), "spec", None)
    if spec is not None and spec.max_episode_steps:
        return int(spec.max_episode_steps)
    space = getattr(env, "single_observation_space", env.observation_space)
    task = env_attr(env, "task")
    if task == "ner":
        return int(space["word_mask"].shape[0])
    if task == "summarization":
        return int(space["summary_ids"].shape[0])
    if task == "classification":
        return 1
    raise TextgymError(f"cannot bound the episode length of a {task!r} env: set max_episode_steps")
