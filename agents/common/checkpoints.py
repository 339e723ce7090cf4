"""Agent checkpoints: a directory of safetensors + ``config.json`` (no pickle), and the registry
that ``load`` and the CLI find algorithms in.

A checkpoint is written aside and swapped in (an interrupted save keeps the previous
one). Loading validates every field of ``config.json`` and refuses an env that differs
from the one the agent was trained on, so a corrupt or mismatched checkpoint is a
:class:`TextgymError` naming the file, never a raw traceback or silently wrong actions.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import torch

from textgym.errors import TextgymError

from .env_utils import env_info
from .io import (
    atomic_save_tensors,
    atomic_write_json,
    read_json,
    read_tensors,
    replace_dir,
    resolve_dir,
)
from .policies import policy_from_config

if TYPE_CHECKING:
    from .on_policy import OnPolicyAlgorithm


class CheckpointMixin:
    """``save`` / ``load`` of :class:`~textgym.agents.common.on_policy.OnPolicyAlgorithm`."""

    def hyperparameters(self) -> dict[str, Any]:
        return dataclasses.asdict(self.settings)

    def save(self, path: str | Path, training_state: bool = False) -> None:
        """Save to a directory: ``model.safetensors`` + ``config.json`` (no pickle).

        With ``training_state`` also the optimiser state, RNG states and episode counters,
        so ``--resume`` continues where the run stopped. The episodes in flight (a step
        rollout's slots stop mid-episode) cannot be saved through the env interface, so
        such a save also ends them here: this agent's next rollout starts from a fresh
        reset, as the loaded one's does, and training on from here equals loading the
        checkpoint and training on. The directory is written aside and swapped in, so an
        interrupted save leaves the previous checkpoint intact.

        With several processes every rank calls ``save``: the ranks' random states are
        gathered and rank 0 alone writes (the weights and optimiser states are the same
        on every rank); a failed write raises on every rank.
        """
        rank_states = None
        if training_state and self.dist.enabled:
            rank_states = self.dist.all_gather(self._rank_state())
        self.dist.main_first(lambda: self._write(Path(path), training_state, rank_states))
        if training_state:
            self._end_episodes_in_flight()

    def _rank_state(self) -> dict[str, Any]:
        """What differs between ranks: their random states (numpy draws the minibatches)."""
        return {
            "numpy_rng": self.rng.bit_generator.state,
            "torch": torch.get_rng_state(),
            "sample": self.sample_generator.get_state(),
        }

    def _write(self, path: Path, training_state: bool, rank_states: list[dict] | None) -> None:
        tmp = path.with_name(path.name + ".tmp")
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        atomic_save_tensors(tmp / "model.safetensors", self.policy.state_dict())
        for name, module in self._frozen_modules().items():
            atomic_save_tensors(tmp / f"{name}.safetensors", module.state_dict())
        config = {
            "format": "textgym-agent/1",
            "algorithm": self.name,
            "hyperparameters": self.hyperparameters(),
            "policy": self.policy.config(),
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "env_info": self.env_info,
            "seed": self.seed,
            "num_timesteps": self.num_timesteps,
            "num_episodes": self.num_episodes,
            "num_updates": self.num_updates,
            "target_timesteps": self.target_timesteps,
            "wall_time": self.wall_time,
            "eval_history": self.eval_history,
            "world_size": self.dist.world_size,
        }
        if training_state:
            tensors, optim_json = {}, {}
            for name, opt in self._optimizers().items():
                state = opt.state_dict()
                for pid, pstate in state["state"].items():
                    for key, value in pstate.items():
                        tensors[f"{name}/{pid}/{key}"] = torch.as_tensor(value)
                optim_json[name] = state["param_groups"]
            tensors["rng/torch"] = torch.get_rng_state()
            tensors["rng/sample"] = self.sample_generator.get_state()
            for rank, state in enumerate(rank_states or []):
                tensors[f"rank{rank}/rng/torch"] = state["torch"]
                tensors[f"rank{rank}/rng/sample"] = state["sample"]
            atomic_save_tensors(tmp / "training_state.safetensors", tensors)
            config["training_state"] = {
                "optimizers": optim_json,
                "numpy_rng": self.rng.bit_generator.state,
                "log_rows": self.logger.rows,
                # the rollout/ep_*_mean window of the progress bar and log
                "recent_returns": list(self._recent_returns),
                "recent_lengths": [int(n) for n in self._recent_lengths],
            }
            if self.schedule is not None:
                config["training_state"]["schedule"] = self.schedule.state()
            if self.schedule_rng is not self.rng:
                config["training_state"]["schedule_rng"] = self.schedule_rng.bit_generator.state
            if rank_states is not None:
                config["training_state"]["ranks"] = [
                    {"numpy_rng": state["numpy_rng"]} for state in rank_states
                ]
        atomic_write_json(tmp / "config.json", config)
        replace_dir(tmp, path)

    @classmethod
    def load(
        cls,
        path: str | Path,
        env: Any = None,
        device: str | torch.device = "auto",
        log_dir: str | Path | None = None,
        **overrides: Any,
    ) -> OnPolicyAlgorithm:
        """Rebuild a saved agent; ``env`` defaults to the saved env id and kwargs.

        Raises:
            TextgymError: The checkpoint is missing, corrupt or of another algorithm, or
                ``env`` differs from the env it was trained on (task, actions, labels,
                vocabulary, special tokens); the message names the checkpoint.
        """
        path = resolve_dir(Path(path))
        config = read_json(path / "config.json")
        if not isinstance(config, dict) or config.get("format") != "textgym-agent/1":
            raise TextgymError(f"{path}: not a textgym agent checkpoint")
        try:
            return cls._load(path, config, env, device, log_dir, overrides)
        except TextgymError as err:
            if str(path) in str(err):
                raise
            raise TextgymError(f"{path}: {err}") from err
        except LOAD_ERRORS as err:
            raise TextgymError(f"{path}: corrupt checkpoint: {type(err).__name__}: {err}") from err

    @classmethod
    def _load(
        cls,
        path: Path,
        config: dict,
        env: Any,
        device: str | torch.device,
        log_dir: str | Path | None,
        overrides: dict[str, Any],
    ) -> OnPolicyAlgorithm:
        algorithm = config.get("algorithm")
        if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
            raise TextgymError(f"{path}: corrupt checkpoint: unknown algorithm {algorithm!r}")
        if cls.name and algorithm != cls.name:
            raise TextgymError(f"{path} holds a {algorithm} agent, not {cls.name}")
        algo_cls = ALGORITHMS[algorithm] if not cls.name else cls
        _validate_config(path, config, algo_cls.settings_class)
        weights = read_tensors(path / "model.safetensors")
        _check_layer_count(path, config["policy"], weights)
        try:
            policy = policy_from_config(config["policy"])
        except Exception as err:  # transformers' config classes raise their own types too
            raise TextgymError(
                f"{path}: corrupt checkpoint: cannot rebuild the policy from config.json "
                f"({type(err).__name__}: {err})"
            ) from err
        try:
            policy.load_state_dict(weights)
        except RuntimeError as err:
            raise TextgymError(f"{path}: weights do not match the saved config ({err})") from err
        try:  # settings that shape no weight (attention heads, chunking) fail only here
            with torch.no_grad():
                ids = torch.ones(1, 2, dtype=torch.long)
                policy.encode({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
        except Exception as err:
            raise TextgymError(
                f"{path}: corrupt checkpoint: the policy rebuilt from config.json does not "
                f"run ({type(err).__name__}: {err})"
            ) from err
        env_kwargs = None
        if env is not None and not isinstance(env, str):  # compare before building on it
            _check_env_info(path, config["env_info"], env_info(env))
        if env is None:
            if config["env_id"] is None:
                raise TextgymError(f"{path}: saved without an env id; pass env=")
            env, env_kwargs = config["env_id"], config["env_kwargs"]
        model = algo_cls(
            env,
            policy=policy,
            seed=config["seed"],
            device=device,
            env_kwargs=env_kwargs,
            log_dir=log_dir,
            **{**config["hyperparameters"], **overrides},
        )
        _check_env_info(path, config["env_info"], model.env_info)
        model.num_timesteps = config["num_timesteps"]
        model.num_episodes = config["num_episodes"]
        model.num_updates = config["num_updates"]
        model.target_timesteps = config.get("target_timesteps")
        model.wall_time = float(config.get("wall_time", 0.0))
        model.eval_history = list(config["eval_history"])
        for name, module in model._frozen_modules().items():
            if (path / f"{name}.safetensors").exists():
                module.load_state_dict(read_tensors(path / f"{name}.safetensors"))
        if "training_state" in config:
            model._load_training_state(path, config["training_state"])
        return model

    def _load_training_state(self, path: Path, state: dict) -> None:
        tensors = read_tensors(path / "training_state.safetensors")
        for name, opt in self._optimizers().items():
            per_param: dict[int, dict] = {}
            for key, value in tensors.items():
                opt_name, pid, field_name = (key.split("/", 2) + ["", ""])[:3]
                if opt_name == name:
                    per_param.setdefault(int(pid), {})[field_name] = value
            opt.load_state_dict({"state": per_param, "param_groups": state["optimizers"][name]})
        torch.set_rng_state(tensors["rng/torch"])
        self.sample_generator.set_state(tensors["rng/sample"])
        self.rng.bit_generator.state = state["numpy_rng"]
        self.logger.rows = list(state["log_rows"]) + self.logger.rows
        self._recent_returns.extend(state.get("recent_returns", []))
        self._recent_lengths.extend(state.get("recent_lengths", []))
        if self.schedule is not None and isinstance(state.get("schedule"), dict):
            self.schedule.load_state(state["schedule"])
        if self.schedule_rng is not self.rng and isinstance(state.get("schedule_rng"), dict):
            self.schedule_rng.bit_generator.state = state["schedule_rng"]
        # a run of several ranks: each continues from its own random state; with another
        # number of ranks every rank continues from rank 0's (textgym train refuses that)
        ranks = state.get("ranks")
        if isinstance(ranks, list) and len(ranks) == self.dist.world_size > 1:
            rank = self.dist.rank
            torch.set_rng_state(tensors[f"rank{rank}/rng/torch"])
            self.sample_generator.set_state(tensors[f"rank{rank}/rng/sample"])
            self.rng.bit_generator.state = ranks[rank]["numpy_rng"]


#: Encoder config keys that count the transformer's layers.
LAYER_COUNT_KEYS = ("num_hidden_layers", "n_layer", "num_layers")
_LAYER_INDEX = re.compile(r"\.(?:layer|layers|h|block)\.(\d+)\.")


def _check_layer_count(path: Path, policy_config: Any, weights: dict) -> None:
    """Refuse a layer count in config.json that the ``weights`` do not hold, before
    building: a corrupt count (10**30) would build layers until memory ran out."""
    encoder = policy_config.get("encoder") if isinstance(policy_config, dict) else None
    if not isinstance(encoder, dict):
        return  # policy_from_config names what is wrong
    layers = {int(m.group(1)) for name in weights if (m := _LAYER_INDEX.search(name))}
    if not layers:
        return  # an architecture whose layers are named otherwise
    for key in LAYER_COUNT_KEYS:
        if key not in encoder:
            continue
        value = encoder[key]
        if isinstance(value, bool) or not isinstance(value, int) or value != len(layers):
            raise TextgymError(
                f"{path}: corrupt checkpoint: config.json's policy encoder {key} is "
                f"{value!r}, but model.safetensors holds {len(layers)} layers"
            )


LOAD_ERRORS = (
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
    IndexError,
    RuntimeError,
    OverflowError,
    gym.error.Error,
)
"""What a corrupt config.json can make the rebuild raise (turned into a TextgymError)."""

ENV_INFO_KEYS = (
    "task",
    "n_actions",
    "vocab_size",
    "labels",
    "pad_token_id",
    "eos_token_id",
    "max_summary_tokens",
)

_TYPES = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "None": lambda v: v is None,
}


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _validate_config(path: Path, config: dict, settings_class: type) -> None:
    """Refuse a config.json whose fields are missing or of the wrong kind."""

    def bad(what: str) -> TextgymError:
        return TextgymError(f"{path}: corrupt checkpoint: {what} in config.json")

    kinds = {
        "hyperparameters": dict,
        "policy": dict,
        "env_kwargs": dict,
        "env_info": dict,
        "eval_history": list,
    }
    for key, kind in kinds.items():
        if not isinstance(config.get(key), kind):
            raise bad(f"{key!r} is not a {kind.__name__}")
    for key in ("num_timesteps", "num_episodes", "num_updates", "seed"):
        if not _is_count(config.get(key)):
            raise bad(f"{key!r} is not a non-negative integer")
    if config.get("target_timesteps") is not None and not _is_count(config["target_timesteps"]):
        raise bad("'target_timesteps' is not a non-negative integer")
    if "wall_time" in config and not _TYPES["float"](config["wall_time"]):
        raise bad("'wall_time' is not a number")
    if "world_size" in config and not (_is_count(config["world_size"]) and config["world_size"]):
        raise bad("'world_size' is not a positive integer")
    if config.get("env_id") is not None and not isinstance(config["env_id"], str):
        raise bad("'env_id' is not a string")
    policy = config["policy"]
    if not isinstance(policy.get("encoder"), dict) or not isinstance(policy.get("task"), str):
        raise bad("'policy' lacks its encoder config or task")
    if not all(isinstance(e, dict) for e in config["eval_history"]):
        raise bad("'eval_history' holds something other than objects")
    fields = {f.name: f for f in dataclasses.fields(settings_class)}
    for key, value in config["hyperparameters"].items():
        if key not in fields:
            raise bad(f"unknown hyperparameter {key!r}")
        names = [t.strip() for t in str(fields[key].type).split("|")]
        checks = [_TYPES[t] for t in names if t in _TYPES]
        if len(checks) == len(names) and not any(check(value) for check in checks):
            raise bad(f"hyperparameter {key}={value!r} is not {fields[key].type}")
        if key in ("n_envs", "n_steps", "batch_size") and not (value > 0):
            raise bad(f"hyperparameter {key}={value!r} is not positive")
    if "training_state" in config:
        state = config["training_state"]
        if not isinstance(state, dict):
            raise bad("'training_state' is not an object")
        if not isinstance(state.get("optimizers"), dict) or not all(
            isinstance(groups, list) for groups in state["optimizers"].values()
        ):
            raise bad("'training_state.optimizers' is not an object of lists")
        if not isinstance(state.get("numpy_rng"), dict) or not isinstance(
            state.get("log_rows"), list
        ):
            raise bad("'training_state' lacks its numpy_rng or log_rows")
        for key in ("recent_returns", "recent_lengths"):
            values = state.get(key, [])
            if not isinstance(values, list) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in values
            ):
                raise bad(f"'training_state.{key}' is not a list of finite numbers")
        ranks = state.get("ranks", [])
        if not isinstance(ranks, list) or not all(
            isinstance(r, dict) and isinstance(r.get("numpy_rng"), dict) for r in ranks
        ):
            raise bad("'training_state.ranks' is not a list of random states")


def _check_env_info(path: Path, saved: dict, current: dict) -> None:
    """Refuse an env that differs from the one the checkpoint was trained on."""
    differences = []
    for key in ENV_INFO_KEYS:
        if saved.get(key) != current.get(key):
            differences.append(
                f"{key}: saved {_short(saved.get(key))}, env {_short(current.get(key))}"
            )
    if differences:
        raise TextgymError(
            f"{path}: the env differs from the one this agent was trained on ("
            + "; ".join(differences)
            + "): token ids, labels or actions would mean other things. Use an env with the "
            "same tokenizer, label set and task."
        )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


ALGORITHMS: dict[str, type[OnPolicyAlgorithm]] = {}


def register_algorithm(cls: type[OnPolicyAlgorithm]) -> type[OnPolicyAlgorithm]:
    """Class decorator: makes ``OnPolicyAlgorithm.load`` and the CLI find the algorithm."""
    ALGORITHMS[cls.name] = cls
    return cls
