"""Bench configs: a YAML file in the rl-baselines3-zoo spirit, expanded to env x agent x seed.

A config names the envs (each with its env id and kwargs), the agents (each with its
hyperparameters), the seeds, the step budget and the evaluation split::

    seeds: [0, 1, 2]            # or a count: 3 means 0, 1, 2
    n_timesteps: 20000          # env steps per RL run (an env or agent entry may override)
    policy: minilm              # encoder of the RL policies and of the supervised baseline
    device: auto                # auto (CUDA when present), cpu or cuda
    eval_split: test            # split the final metrics are computed on
    resources: {cpus: 1}        # what one run asks of a Ray cluster (--backend ray)
    agents:                     # defaults for every env
      random: {}
      majority: {}
      supervised: {epochs: 2}
      ppo: {}                   # {} means the per-env defaults of textgym.agents
    envs:
      ner:                      # the run directory: runs/ner/<agent>/seed<k>/
        env_id: TextNER-v0
        env_kwargs: {max_tokens: 48}
        agents:                 # which agents run here; keys override the defaults above
          random:
          majority:
          supervised: {learning_rate: 5.0e-5}
          ppo: {n_envs: 16, n_timesteps: 30000}

Inside an agent entry ``n_timesteps``, ``policy``, ``checkpoint_freq`` and ``resources``
are run settings; ``algo`` picks the algorithm when the entry's name is not one (so
``ppo-lr1e-4: {algo: ppo, learning_rate: 1.0e-4}`` is a second PPO row); every other key
is a hyperparameter (a field of the algorithm's settings dataclass, or a keyword of the
baseline). An env without ``agents`` runs every agent of the top-level list.

``resources: {cpus: N, gpus: M}`` (top level, env entry, agent entry; the innermost wins,
key by key) is what one run reserves on a Ray cluster. It defaults to one CPU, and to one
GPU when ``device: cuda`` and the agent runs a torch model. The local backend ignores it.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from textgym.errors import TextgymError

TOP_LEVEL_KEYS = {
    "seeds",
    "n_timesteps",
    "policy",
    "device",
    "eval_split",
    "resources",
    "agents",
    "envs",
}
ENV_KEYS = {"env_id", "env_kwargs", "agents", "n_timesteps", "policy", "eval_split", "resources"}
RUN_SETTINGS = {"n_timesteps", "policy", "checkpoint_freq", "algo", "resources"}
RESOURCE_KEYS = {"cpus", "gpus"}
# Baselines that never put a tensor on a device: no GPU by default, even with device: cuda.
NO_DEVICE_BASELINES = {"random", "majority", "lead"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# YAML 1.1 (PyYAML) reads 3e-4 as a string; only 3.0e-4 is a float.
_EXPONENT_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


@dataclass(frozen=True)
class RunSpec:
    """One cell of the matrix: everything a worker needs to produce one ``summary.json``.

    Attributes:
        env_name: The config's name for the env entry (first directory level).
        env_id: The registered env id.
        env_kwargs: Env kwargs (``split`` is chosen by the run, never here).
        agent: The config's name for the agent (second directory level).
        algo: ``ppo`` / ``reinforce`` / ``trpo`` or a baseline (``random``, ``majority``,
            ``lead``, ``supervised``).
        seed: The run's seed (third directory level: ``seed<k>``).
        n_timesteps: Env steps to train for (RL agents; baselines ignore it).
        policy: Encoder name (RL agents and ``supervised``).
        hyperparameters: Overrides of the algorithm's settings, or the baseline's kwargs.
        eval_split: Split of the final metrics.
        device: Torch device.
        checkpoint_freq: Env steps between checkpoints (None: the train CLI's default).
        resources: ``{"cpus": N, "gpus": M}`` the run reserves on a Ray cluster. Where a
            run is scheduled does not change what it computes, so this is not part of
            ``run.json`` (:meth:`to_json`) nor of the equality of two specs.
    """

    env_name: str
    env_id: str
    env_kwargs: dict[str, Any]
    agent: str
    algo: str
    seed: int
    n_timesteps: int
    policy: str
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    eval_split: str = "test"
    device: str = "auto"
    checkpoint_freq: int | None = None
    resources: dict[str, float] = field(
        default_factory=lambda: {"cpus": 1, "gpus": 0}, compare=False
    )

    @property
    def key(self) -> str:
        """``env/agent/seed<k>``: the run's directory relative to the bench's ``--out``."""
        return f"{self.env_name}/{self.agent}/seed{self.seed}"

    def run_dir(self, out: str | os.PathLike) -> Path:
        return Path(out) / self.env_name / self.agent / f"seed{self.seed}"

    def to_json(self) -> dict[str, Any]:
        """What ``run.json`` holds: everything that decides the run's results."""
        data = dataclasses.asdict(self)
        del data["resources"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _fail(source: str, message: str) -> TextgymError:
    return TextgymError(f"{source}: {message}")


def _check_name(source: str, what: str, name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(source, f"{what} name {name!r} must be letters, digits, '.', '_' or '-'")
    return name


def _mapping(source: str, where: str, value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(source, f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _check_keys(source: str, where: str, data: dict, allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _fail(source, f"unknown key(s) {unknown} in {where}; allowed: {sorted(allowed)}")


def _seeds(source: str, value: Any) -> list[int]:
    if isinstance(value, bool):
        raise _fail(source, f"seeds must be a count or a list of integers, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise _fail(source, f"seeds must be >= 1, got {value}")
        return list(range(value))
    if (
        isinstance(value, list)
        and value
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)
        and len(set(value)) == len(value)
    ):
        return list(value)
    raise _fail(source, f"seeds must be a count or a list of distinct integers >= 0, got {value!r}")


def _positive_int(source: str, where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(source, f"{where} must be a positive integer, got {value!r}")
    return value


def _resources(source: str, where: str, value: Any) -> dict[str, float]:
    """A ``resources:`` mapping, checked against what Ray accepts for one task."""
    value = _mapping(source, where, value)
    _check_keys(source, where, value, RESOURCE_KEYS)
    for name, amount in value.items():
        if (
            isinstance(amount, bool)
            or not isinstance(amount, (int, float))
            or not math.isfinite(amount)
        ):
            raise _fail(source, f"{where}.{name} must be a number, got {amount!r}")
        if amount < 0 or (name == "cpus" and amount == 0):
            bound = "> 0" if name == "cpus" else ">= 0"
            raise _fail(source, f"{where}.{name} must be {bound}, got {amount!r}")
        if amount > 1 and amount != int(amount):
            raise _fail(
                source,
                f"{where}.{name} = {amount!r}: a share of a {name[:-1].upper()} must be "
                "below 1; above 1 it must be a whole number (Ray's rule)",
            )
    return value


def _run_resources(
    source: str, where: str, algo: str, device: str, layers: list[tuple[str, Any]]
) -> dict[str, float]:
    """Merge ``resources`` from the outermost entry to the innermost, key by key."""
    merged: dict[str, float] = {}
    for place, value in layers:
        merged.update(_resources(source, place, value))
    uses_device = algo not in NO_DEVICE_BASELINES
    cuda = device.split(":")[0] == "cuda"
    merged.setdefault("cpus", 1)
    merged.setdefault("gpus", 1 if cuda and uses_device else 0)
    if uses_device and device == "cpu" and merged["gpus"] > 0:
        raise _fail(source, f"{where}: resources ask for {merged['gpus']} GPU(s) but device is cpu")
    if uses_device and cuda and merged["gpus"] == 0:
        raise _fail(
            source,
            f"{where}: device is cuda but resources ask for no GPU (a Ray run sees only the "
            "GPUs it reserves); set gpus, or device: auto to use one when reserved",
        )
    return {k: int(v) if float(v).is_integer() else float(v) for k, v in merged.items()}


def check_hyperparameters(source: str, where: str, algo: str, hparams: dict) -> None:
    """Fail early, before any run starts, on a hyperparameter the agent does not have."""
    from textgym.leaderboard.baselines import BASELINES

    if algo in BASELINES:
        params = inspect.signature(BASELINES[algo]).parameters
        valid = {n for n, p in params.items() if p.kind == p.KEYWORD_ONLY}
    else:
        from textgym.agents import ALGORITHMS

        valid = {f.name for f in dataclasses.fields(ALGORITHMS[algo].settings_class)}
    unknown = sorted(set(hparams) - valid)
    if unknown:
        raise _fail(source, f"{where}: {algo} has no setting(s) {unknown}; valid: {sorted(valid)}")


def known_algorithms() -> list[str]:
    from textgym.agents import ALGORITHMS
    from textgym.leaderboard.baselines import BASELINES

    return sorted(set(ALGORITHMS) | set(BASELINES))


def parse_config(data: Any, source: str = "<config>") -> list[RunSpec]:
    """Expand a config mapping into its runs, in env, agent, seed order.

    Raises:
        TextgymError: A key, name, env id, algorithm or hyperparameter the config cannot
            mean; the message names the file and the entry.
    """
    import gymnasium as gym

    import textgym

    data = _mapping(source, "the config", data)
    _check_keys(source, "the config", data, TOP_LEVEL_KEYS)
    seeds = _seeds(source, data.get("seeds", 3))
    default_steps = _positive_int(source, "n_timesteps", data.get("n_timesteps", 20_000))
    default_policy = str(data.get("policy", "minilm"))
    device = str(data.get("device", "auto"))
    default_split = str(data.get("eval_split", "test"))
    agent_defaults = _mapping(source, "agents", data.get("agents"))
    envs = _mapping(source, "envs", data.get("envs"))
    if not envs:
        raise _fail(source, "no envs: add an 'envs:' mapping (see textgym.leaderboard.config)")
    algorithms = known_algorithms()

    runs: list[RunSpec] = []
    for env_name, env_entry in envs.items():
        _check_name(source, "env", env_name)
        env_entry = _mapping(source, f"envs.{env_name}", env_entry)
        _check_keys(source, f"envs.{env_name}", env_entry, ENV_KEYS)
        env_id = env_entry.get("env_id")
        if env_id not in textgym.ENV_IDS and env_id not in gym.registry:
            raise _fail(
                source,
                f"envs.{env_name}.env_id {env_id!r} is not registered; textgym ids: "
                f"{', '.join(textgym.ENV_IDS)}",
            )
        env_kwargs = dict(
            _mapping(source, f"envs.{env_name}.env_kwargs", env_entry.get("env_kwargs"))
        )
        if "split" in env_kwargs:
            raise _fail(
                source, f"envs.{env_name}.env_kwargs: 'split' is chosen by the run (use eval_split)"
            )
        env_agents = env_entry.get("agents")
        chosen = (
            agent_defaults
            if env_agents is None
            else _mapping(source, f"envs.{env_name}.agents", env_agents)
        )
        if not chosen:
            raise _fail(source, f"envs.{env_name}: no agents")
        for agent, override in chosen.items():
            where = f"envs.{env_name}.agents.{agent}"
            _check_name(source, "agent", agent)
            default_entry = dict(_mapping(source, f"agents.{agent}", agent_defaults.get(agent)))
            override = dict(_mapping(source, where, override))
            resource_layers = [
                ("resources", data.get("resources")),
                (f"envs.{env_name}.resources", env_entry.get("resources")),
                (f"agents.{agent}.resources", default_entry.pop("resources", None)),
                (f"{where}.resources", override.pop("resources", None)),
            ]
            entry = {**default_entry, **override}
            algo = entry.pop("algo", agent)
            if algo not in algorithms:
                raise _fail(
                    source,
                    f"{where}: unknown agent {algo!r}; known: {', '.join(algorithms)} (or set algo:)",
                )
            steps = _positive_int(
                source,
                f"{where}.n_timesteps",
                entry.pop("n_timesteps", env_entry.get("n_timesteps", default_steps)),
            )
            policy = str(entry.pop("policy", env_entry.get("policy", default_policy)))
            checkpoint_freq = entry.pop("checkpoint_freq", None)
            if checkpoint_freq is not None:
                checkpoint_freq = _positive_int(source, f"{where}.checkpoint_freq", checkpoint_freq)
            entry = {
                k: float(v) if isinstance(v, str) and _EXPONENT_FLOAT.match(v) else v
                for k, v in entry.items()
            }
            check_hyperparameters(source, where, algo, entry)
            resources = _run_resources(source, where, algo, device, resource_layers)
            for seed in seeds:
                runs.append(
                    RunSpec(
                        env_name=env_name,
                        env_id=env_id,
                        env_kwargs=env_kwargs,
                        agent=agent,
                        algo=algo,
                        seed=seed,
                        n_timesteps=steps,
                        policy=policy,
                        hyperparameters=dict(entry),
                        eval_split=str(env_entry.get("eval_split", default_split)),
                        device=device,
                        checkpoint_freq=checkpoint_freq,
                        resources=dict(resources),
                    )
                )
    return runs


class _DuplicateKey(yaml.YAMLError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping key given twice (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                break
            if first is not None:
                raise _DuplicateKey(
                    f"line {key_node.start_mark.line + 1}: the key {key!r} is given twice in "
                    f"one mapping (first on line {first.start_mark.line + 1}); remove one "
                    "(YAML readers would silently keep the last)"
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | os.PathLike) -> list[RunSpec]:
    """Read a bench YAML and expand it (see the module docstring for the format).

    A key given twice in one mapping is an error (plain YAML loaders keep the last one).
    """
    path = Path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506  (a SafeLoader)
    except FileNotFoundError as err:
        raise TextgymError(f"{path}: bench config not found") from err
    except _DuplicateKey as err:
        raise TextgymError(f"{path}, {err}") from None
    except yaml.YAMLError as err:
        raise TextgymError(f"{path}: not valid YAML ({err})") from err
    return parse_config(data, str(path))
