"""textgym's native batched envs as stable-baselines3 ``VecEnv`` s.

SB3 would otherwise run ``n_envs`` single envs in a Python loop (``DummyVecEnv``); the
native vector env steps all slots with one numpy call. Both reset finished slots inside
the same step, so the translation is only in the return values:

| Gymnasium vector API (same-step autoreset) | SB3 ``VecEnv`` API |
|---|---|
| ``reset(seed=, options=)`` -> ``obs, infos`` | ``seed(s)``, ``set_options(...)``, then ``reset()`` -> ``obs`` (infos in ``reset_infos``) |
| ``step`` -> ``obs, rewards, terminated, truncated, infos`` (dict of arrays) | ``step_async`` / ``step_wait`` -> ``obs, rewards, dones, infos`` (list of dicts) |
| ``infos["final_obs"]`` rows, ``infos["final_info"]`` | ``infos[i]["terminal_observation"]``, the finished episode's info keys |
| ``truncated & ~terminated`` | ``infos[i]["TimeLimit.truncated"]`` |
| ``action_masks()`` -> ``(num_envs, n)`` | ``env_method("action_masks")`` -> one mask per env (sb3-contrib) |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.vector_env import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices

from textgym.errors import TextgymError

__all__ = ["TextgymVecEnv", "make_sb3_vec_env"]

# Keys of a vector info dict that are not per-slot values of the current step.
_NOT_PER_SLOT = ("final_obs", "final_info")


def _add_slot_values(info: dict, out: list[dict], slots: np.ndarray | None = None) -> None:
    """Copy the per-slot entries of a vector info dict into one dict per slot.

    Gymnasium's vector infos hold, per key, an array over slots and a mask ``"_key"`` of
    the slots that set it. ``slots`` restricts the copy to those slots (all: None). Values
    leave numpy through one ``tolist()`` per key (plain Python numbers, as single envs
    give), not one scalar conversion per slot.
    """
    for key, value in info.items():
        if key.startswith("_") or key in _NOT_PER_SLOT:
            continue
        chosen = np.arange(len(out)) if slots is None else slots
        mask = info.get(f"_{key}")
        if mask is not None:
            chosen = chosen[np.asarray(mask)[chosen]]
        if isinstance(value, dict):
            nested: list[dict] = [{} for _ in out]
            _add_slot_values(value, nested, chosen)
            for slot in chosen.tolist():
                if nested[slot]:
                    out[slot][key] = nested[slot]
            continue
        for slot, item in zip(chosen.tolist(), np.asarray(value)[chosen].tolist(), strict=True):
            out[slot][key] = item


class TextgymVecEnv(VecEnv):
    """A same-step-autoreset Gymnasium vector env (textgym's native one) as an SB3 ``VecEnv``.

    Each step returns the new observations (finished slots already reset, as SB3
    expects) and one info dict per slot: ``{"index": example}`` for running episodes; for
    a slot whose episode ended, the finished episode's ``final_info`` entries
    (``index``, ``f1``, ``rouge``, ...), ``terminal_observation`` (its last observation,
    a dict of arrays) and ``TimeLimit.truncated`` (True when it was truncated rather
    than terminated). The new episode's info goes to ``reset_infos[i]``.

    ``get_attr`` / ``env_method`` reach the vector env: an attribute is the same for
    every slot; a method is called once for the batch, and a result with a leading
    ``num_envs`` axis (``action_masks()``) is split into one item per slot. ``set_attr``
    sets the attribute on the vector env, so it applies to every slot.

    Args:
        env: A Gymnasium ``VectorEnv`` with ``metadata["autoreset_mode"] ==
            AutoresetMode.SAME_STEP``, e.g. ``gymnasium.make_vec("TextNER-v0", num_envs=8,
            autoreset_mode=AutoresetMode.SAME_STEP)``.

    Raises:
        TextgymError: The vector env autoresets in another mode (its observations would
            not line up with SB3's).
    """

    def __init__(self, env: gym.vector.VectorEnv):
        mode = env.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise TextgymError(
                f"TextgymVecEnv needs a vector env with AutoresetMode.SAME_STEP, got {mode}; "
                "gymnasium.make_vec(<textgym id>, num_envs=n, "
                "autoreset_mode=AutoresetMode.SAME_STEP) gives one (make_sb3_vec_env does that)"
            )
        self.vector_env = env
        self._actions: np.ndarray | None = None
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)

    # -- stepping --------------------------------------------------------------------------
    def reset(self) -> dict[str, np.ndarray]:
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, info = self.vector_env.reset(seed=seeds, options=self._batch_options())
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        _add_slot_values(info, self.reset_infos)
        return obs

    def _batch_options(self) -> dict | None:
        """SB3's per-env reset options as one options dict for the batch.

        Per-env ``{"index": i}`` become ``{"index": [i_0, ..., i_{n-1}]}``; options equal
        for every env (e.g. ``{"indices": playlist}``) pass through.
        """
        options = self._options
        if all(not o for o in options):
            return None
        if all(set(o) == {"index"} for o in options):
            return {"index": np.array([o["index"] for o in options], np.int64)}
        if all(o == options[0] for o in options):
            return dict(options[0])
        raise TextgymError(
            "reset options must be {'index': i} for every env or the same dict for all envs, "
            f"got {options}"
        )

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        if self._actions is None:
            raise TextgymError("step_wait() called without step_async(actions)")
        obs, rewards, terminated, truncated, info = self.vector_env.step(self._actions)
        self._actions = None
        dones = np.logical_or(terminated, truncated)
        infos: list[dict] = [{} for _ in range(self.num_envs)]
        _add_slot_values(info, infos)
        if dones.any():
            self._finish(infos, info, np.flatnonzero(dones), terminated, truncated)
        return obs, np.asarray(rewards, np.float32), dones, infos

    def _finish(
        self,
        infos: list[dict],
        info: dict,
        slots: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Turn the infos of the finished ``slots`` into SB3's end-of-episode infos."""
        for slot in slots.tolist():
            self.reset_infos[slot] = infos[slot]
            infos[slot] = {}
        final_info = info.get("final_info")
        if final_info is not None:
            _add_slot_values(final_info, infos, slots)
        # One fancy-indexed copy per key, split into row views by one list() per key.
        keys = list(info["final_obs"])
        rows = [list(info["final_obs"][key][slots]) for key in keys]
        time_limit = (truncated & ~terminated)[slots].tolist()
        for slot, limit, *obs_rows in zip(slots.tolist(), time_limit, *rows, strict=True):
            infos[slot]["terminal_observation"] = dict(zip(keys, obs_rows, strict=True))
            infos[slot]["TimeLimit.truncated"] = limit

    def close(self) -> None:
        self.vector_env.close()

    # -- attributes and methods --------------------------------------------------------------
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.vector_env, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.vector_env, attr_name, value)

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        result = getattr(self.vector_env, method_name)(*method_args, **method_kwargs)
        slots = list(self._get_indices(indices))
        if isinstance(result, np.ndarray) and result.shape[:1] == (self.num_envs,):
            return list(result[slots])
        return [result for _ in slots]

    def action_masks(self) -> np.ndarray:
        """Allowed actions of every slot, ``(num_envs, n_actions)`` bool."""
        return np.asarray(self.vector_env.action_masks())

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        # The slots of a native vector env are not gym.Env objects: nothing wraps them.
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]


def make_sb3_vec_env(
    env_id: str, n_envs: int = 8, monitor: bool = True, **env_kwargs: Any
) -> VecEnv:
    """An SB3 ``VecEnv`` over textgym's native vector env in same-step autoreset mode.

    That is ``gymnasium.make_vec(env_id, num_envs=n_envs,
    autoreset_mode=AutoresetMode.SAME_STEP, **env_kwargs)``.

    Args:
        env_id: A textgym env id, e.g. ``"TextNER-v0"``.
        n_envs: Episodes stepped side by side.
        monitor: Wrap in SB3's ``VecMonitor`` so ``rollout/ep_rew_mean`` is logged and
            infos carry ``"episode"`` at episode ends.
        **env_kwargs: Env kwargs (``dataset``, ``split``, ``max_tokens``, ...).

    Returns:
        A :class:`TextgymVecEnv`, inside a ``VecMonitor`` when ``monitor`` is True.
    """
    import textgym  # noqa: F401  (registers the env ids)

    env: VecEnv = TextgymVecEnv(
        gym.make_vec(env_id, num_envs=n_envs, autoreset_mode=AutoresetMode.SAME_STEP, **env_kwargs)
    )
    return VecMonitor(env) if monitor else env
