"""The on-policy loop shared by REINFORCE, TRPO and PPO: rollouts, logging, evaluation, I/O.

An algorithm subclasses :class:`OnPolicyAlgorithm`, names its settings dataclass and
implements :meth:`OnPolicyAlgorithm.train` (its update rule) and, when it has more than
one optimiser, :meth:`OnPolicyAlgorithm._optimizers`.

Where the time goes: the encoder. Rollouts keep one encoding per vector-env slot
(:class:`ContextCache`) and re-encode a slot only when its context (``input_ids``)
changes, i.e. once per episode; after each update the cache is dropped because the
weights changed. Updates encode each unique context of a minibatch once
(:meth:`RolloutBuffer.minibatches`). The hot path has no Python loop over tokens or
slots.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from textgym.errors import TextgymError

from .buffers import RolloutBuffer
from .encoders import check_positions
from .gae import compute_gae
from .io import (
    atomic_save_tensors,
    atomic_write_json,
    read_json,
    read_tensors,
    replace_dir,
    resolve_dir,
)
from .logger import Logger
from .policies import ActorCritic, make_policy, obs_to_tensors, policy_from_config


@dataclass
class OnPolicySettings:
    """Hyperparameters every on-policy algorithm here shares (SB3 names)."""

    n_envs: int = 16
    """Slots of the native vector env used for rollouts."""
    n_steps: int = 64
    """Steps per slot per rollout; a rollout is ``n_envs * n_steps`` env steps."""
    learning_rate: float = 3e-5
    """Adam step size for the whole network (encoder and heads)."""
    anneal_lr: bool = False
    """Decay the learning rate linearly to 0 over the ``learn`` call."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda (1.0: Monte-Carlo returns)."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss in the joint loss."""
    max_grad_norm: float = 1.0
    """Gradient-norm clipping threshold."""
    normalize_advantage: bool = True
    """Standardise advantages per minibatch."""
    scale_advantage_by_value: bool = False
    """Divide each state's advantage by its value ``max(V(s), value_floor)``.

    For 0/1 rewards with ``gamma=0`` (NER token reward) V(s) estimates the probability
    of the correct action, and the expected update becomes the cross-entropy gradient
    instead of ``pi(gold) * grad log pi(gold)``, which vanishes exactly where the policy
    is wrong and collapses NER to all-"O" (DESIGN.md, "the known hard part")."""
    value_floor: float = 0.05
    """Lower bound on V(s) when scaling advantages (caps the weight at 1/value_floor)."""
    batch_size: int = 256
    """Steps per minibatch (whole contexts are kept together)."""
    eval_freq: int = 0
    """Evaluate on ``eval_split`` every this many env steps (0: never during learn)."""
    eval_split: str = "validation"
    """Split used for periodic evaluation."""
    freeze_encoder: bool = False
    """Train only the heads. The encoder's output for a context then never changes, so
    each distinct context is encoded once for the whole run (:class:`FrozenEncodings`):
    a corpus of N documents costs N encoder passes however many steps are taken, which
    makes MiniLM training on a CPU take minutes."""
    context_cache: bool = True
    """Encode each context once per rollout and once per minibatch (the design). False
    encodes the context again at every env step and for every step of a minibatch, as a
    naive agent does; it exists to measure what the cache saves
    (``benchmarks/agent_throughput.py``)."""


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

        return gym.make_vec(env, num_envs=n_envs, **(env_kwargs or {}))
    if isinstance(env, gym.vector.VectorEnv):
        mode = env.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise TextgymError(
                f"the vector env's autoreset mode is {mode}; textgym agents need "
                "AutoresetMode.SAME_STEP (gymnasium.make_vec(env_id) gives it for textgym ids)"
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
    vector_only = ("num_envs", "vectorization_mode", "vector_kwargs", "wrappers")
    return spec.id, {k: v for k, v in (spec.kwargs or {}).items() if k not in vector_only}


def _action_masks(env: Any) -> np.ndarray:
    fn = getattr(env, "action_masks", None) or getattr(env.unwrapped, "action_masks", None)
    if fn is not None:
        return np.asarray(fn(), dtype=bool)
    return np.stack(env.call("action_masks")).astype(bool)


def _final_obs(final_obs: Any, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Rows of ``infos["final_obs"]``: a dict of batched arrays (Dict spaces), or else an
    object array of per-slot observations."""
    if isinstance(final_obs, dict):
        return {k: np.asarray(v)[rows] for k, v in final_obs.items()}
    return {k: np.stack([final_obs[i][k] for i in rows]) for k in final_obs[rows[0]]}


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class ContextCache:
    """Encoder output per vector-env slot, recomputed only for slots whose context changed.

    ``hidden`` is ``(N, L, H)``; a slot's row stays valid while its ``input_ids`` row is
    unchanged. Call :meth:`clear` after every weight update.
    """

    def __init__(self, policy: ActorCritic):
        self.policy = policy
        self.clear()

    def clear(self) -> None:
        self.ids: np.ndarray | None = None
        self.hidden: torch.Tensor | None = None
        self.contexts: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def update(self, obs: dict[str, np.ndarray], obs_t: dict[str, torch.Tensor]) -> np.ndarray:
        """Encode the slots whose context changed (all after :meth:`clear`); returns them."""
        ids = np.asarray(obs["input_ids"])
        if self.ids is None or self.ids.shape != ids.shape:
            self.ids = None
            rows = np.arange(len(ids))
        else:
            rows = np.flatnonzero((ids != self.ids).any(1))
        if rows.size == 0:
            return rows
        rows_t = torch.as_tensor(rows, device=obs_t["input_ids"].device)
        ctx = {k: obs_t[k][rows_t] for k in self.policy.context_keys}
        hidden = self.policy.encode(ctx)  # (r, L', H)
        if self.ids is None:
            n, length = ids.shape
            self.hidden = hidden.new_zeros(n, length, hidden.shape[-1])
            self.contexts = {k: obs_t[k].clone() for k in self.policy.context_keys}
            self.ids = ids.copy()
        self.hidden[rows_t] = 0.0
        self.hidden[rows_t, : hidden.shape[1]] = hidden
        for k in self.policy.context_keys:
            self.contexts[k][rows_t] = ctx[k]
        self.ids[rows] = ids[rows]
        return rows

    def heads(self, obs_t: dict[str, torch.Tensor], rows: torch.Tensor | None = None):
        """``(logits, values)`` of the given slots (all by default) from the cache."""
        if rows is None:
            rows = torch.arange(len(self.ids), device=self.hidden.device)
        return self.policy.heads(self.hidden, self.contexts, rows, obs_t)


class FrozenEncodings:
    """``policy.encode`` memoised by context content, valid while the encoder is frozen.

    Holds one ``(L_i, H)`` float16 tensor per distinct context (its own length, no
    padding) on the encoder's device: about 0.1 MB per 128-token MiniLM context. A call
    encodes the unseen contexts in one batch and pads the rest from the memo.
    """

    def __init__(self, encode: Callable[[dict[str, torch.Tensor]], torch.Tensor]):
        self._encode = encode
        self.memo: dict[bytes, torch.Tensor] = {}

    @torch.no_grad()
    def __call__(self, contexts: dict[str, torch.Tensor]) -> torch.Tensor:
        lengths = contexts["attention_mask"].sum(1).clamp(min=1).tolist()
        ids = contexts["input_ids"].cpu().numpy()
        keys = [ids[i, :n].tobytes() for i, n in enumerate(lengths)]
        missing = [i for i, k in enumerate(keys) if k not in self.memo]
        if missing:
            rows = torch.as_tensor(missing, device=contexts["input_ids"].device)
            hidden = self._encode({k: v[rows] for k, v in contexts.items()})  # (m, L', H)
            for j, i in enumerate(missing):
                self.memo[keys[i]] = hidden[j, : lengths[i]].half()
        length = max(lengths)
        first = self.memo[keys[0]]
        out = first.new_zeros(len(keys), length, first.shape[-1], dtype=torch.float32)
        for i, k in enumerate(keys):
            out[i, : lengths[i]] = self.memo[k]
        return out  # (C, L', H)


class OnPolicyAlgorithm:
    """Shared machinery; see the module docstring. Not used directly.

    Args:
        env: An env id (``"TextNER-v0"``), a Gymnasium env, or a same-step-autoreset
            vector env.
        policy: ``"minilm"``, ``"tiny"``, a Hugging Face name/path, or an
            :class:`ActorCritic`.
        seed: Seeds torch, numpy and the env's reset; CPU runs are bit-reproducible.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        env_kwargs: Env kwargs when ``env`` is an id (dataset, max_tokens...).
        log_dir: Directory for TensorBoard and ``progress.csv``; None: in memory.
        **hparams: Fields of the algorithm's settings dataclass.
    """

    name: ClassVar[str] = ""
    settings_class: ClassVar[type] = OnPolicySettings

    def __init__(
        self,
        env: Any,
        policy: str | ActorCritic = "minilm",
        seed: int = 0,
        device: str | torch.device = "auto",
        env_kwargs: dict | None = None,
        log_dir: str | Path | None = None,
        **hparams: Any,
    ):
        valid = {f.name for f in dataclasses.fields(self.settings_class)}
        unknown = sorted(set(hparams) - valid)
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unknown hyperparameters {unknown}; valid: {sorted(valid)}"
            )
        self.settings = self.settings_class(**hparams)
        self.seed = seed
        self.device = resolve_device(device)
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.sample_generator = torch.Generator(device=self.device).manual_seed(seed)
        self.env = make_vector_env(env, self.settings.n_envs, env_kwargs)
        self.env_id, self.env_kwargs = env_spec(self.env)
        if isinstance(env, str):
            self.env_id = env
            self.env_kwargs = {**self.env_kwargs, **(env_kwargs or {})}
        self.env_info = env_info(self.env)
        context_space = getattr(self.env.single_observation_space, "spaces", {}).get("input_ids")
        context_length = None if context_space is None else int(context_space.shape[0])
        if isinstance(policy, ActorCritic):
            self.policy = policy
            check_positions(policy.encoder, context_length, getattr(policy, "encoder_name", ""))
        else:
            self.policy = make_policy(policy, self.env_info, context_length)
        # dropout off: the update must see the same probabilities the rollout sampled from
        self.policy.to(self.device).eval()
        if self.settings.freeze_encoder:
            self.policy.encoder.requires_grad_(False)
            if not self.policy.policy_parameters():
                raise TextgymError(
                    "freeze_encoder=True leaves this policy nothing to train (its action head "
                    "is part of the encoder, as a causal LM's is): pass freeze_encoder=False"
                )
            # an instance attribute shadows the method for every caller (rollouts,
            # updates, TRPO's Fisher products, predict); weights and checkpoints are unchanged
            self.policy.encode = FrozenEncodings(self.policy.encode)
        self.num_timesteps = 0
        self.num_episodes = 0
        self.num_updates = 0
        self.wall_time = 0.0  # seconds spent in learn(), over resumed runs too
        self.eval_history: list[dict[str, float]] = []
        self.logger = Logger(log_dir)
        self._setup()
        self._cache = ContextCache(self.policy)
        self._predict_cache = ContextCache(self.policy)
        self._obs: dict[str, np.ndarray] | None = None
        self._ep_returns = np.zeros(self.env.num_envs)
        self._ep_lengths = np.zeros(self.env.num_envs, np.int64)
        self._recent_returns: deque[float] = deque(maxlen=100)
        self._recent_lengths: deque[int] = deque(maxlen=100)
        self.buffer = RolloutBuffer(
            self.env.single_observation_space,
            self.policy.context_keys,
            self.settings.n_steps,
            self.env.num_envs,
            action_mask_size=self.env_info["n_actions"] if self._has_masks else None,
        )

    # ----- algorithm hooks -------------------------------------------------------------

    def _setup(self) -> None:
        """Create optimisers (default: one Adam over the whole policy)."""
        trainable = [p for p in self.policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(trainable, lr=self.settings.learning_rate)

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Named optimisers whose state checkpoints keep (for ``--resume``)."""
        return {"optimizer": self.optimizer}

    def _frozen_modules(self) -> dict[str, torch.nn.Module]:
        """Named networks besides the policy that checkpoints keep (a reference policy)."""
        return {}

    def train(self) -> dict[str, float]:
        """One update from ``self.buffer`` (advantages and returns filled); returns logs."""
        raise NotImplementedError

    # ----- rollouts ----------------------------------------------------------------------

    @property
    def _has_masks(self) -> bool:
        return self.env_info["task"] == "summarization"

    def _sample(self, logits: torch.Tensor, masks: torch.Tensor | None):
        dist = self.policy.distribution(logits, masks)
        actions = torch.multinomial(dist.probs, 1, generator=self.sample_generator)[:, 0]
        return actions, dist.log_prob(actions)

    @torch.no_grad()
    def collect_rollouts(self) -> None:
        """Fill ``self.buffer`` with ``n_steps`` vector steps and compute advantages."""
        s, buf, env = self.settings, self.buffer, self.env
        n = env.num_envs
        if self._obs is None:
            self._obs, _ = env.reset(seed=self.seed + self.num_timesteps)
        self._cache.clear()  # the weights changed since the last rollout
        buf.reset()
        ctx_ids = np.zeros(n, np.int64)
        final_values = np.zeros((s.n_steps, n), np.float32)
        for _ in range(s.n_steps):
            obs = self._obs
            obs_t = obs_to_tensors(obs, self.device)
            if not s.context_cache:
                # every slot re-encoded and stored as a new context, so the update also
                # encodes once per step
                self._cache.clear()
            changed = self._cache.update(obs, obs_t)
            masks = _action_masks(env) if self._has_masks else None
            masks_t = None if masks is None else torch.as_tensor(masks, device=self.device)
            logits, values = self._cache.heads(obs_t)
            actions, log_probs = self._sample(logits, masks_t)
            if changed.size:  # new episodes (and every slot at the start) are new contexts
                ctx_ids[changed] = buf.add_contexts(obs, changed)
            buf.add(
                obs,
                ctx_ids,
                actions.cpu().numpy(),
                log_probs.cpu().numpy(),
                values.cpu().numpy(),
                masks,
            )
            next_obs, rewards, terminated, truncated, infos = env.step(actions.cpu().numpy())
            # a truncated episode continues in value: V(final obs), read with the finished
            # episode's encoding, which is still in the cache at this point
            cut = np.flatnonzero(truncated & ~terminated)
            if cut.size:
                final = obs_to_tensors(_final_obs(infos["final_obs"], cut), self.device)
                _, v = self._cache.heads(final, torch.as_tensor(cut, device=self.device))
                final_values[buf.pos, cut] = v.cpu().numpy()
            buf.add_outcome(rewards, terminated, truncated, np.zeros(n))
            self._track_episodes(rewards, terminated | truncated)
            self._obs = next_obs
            self.num_timesteps += n
        # bootstrap the unfinished episodes with V(s_T)
        obs_t = obs_to_tensors(self._obs, self.device)
        self._cache.update(self._obs, obs_t)
        _, last_values = self._cache.heads(obs_t)
        done = buf.terminated | buf.truncated
        following = np.concatenate([buf.values[1:], last_values.cpu().numpy()[None]])
        buf.next_values[:] = np.where(done, final_values, following)
        buf.advantages[:], buf.returns[:] = compute_gae(
            buf.rewards,
            buf.values,
            buf.next_values,
            buf.terminated,
            buf.truncated,
            s.gamma,
            s.gae_lambda,
        )
        if s.scale_advantage_by_value:
            buf.advantages /= np.maximum(buf.values, s.value_floor)
        buf.finalize()

    def _track_episodes(self, rewards: np.ndarray, done: np.ndarray) -> None:
        self._ep_returns += rewards
        self._ep_lengths += 1
        if done.any():
            self._recent_returns.extend(self._ep_returns[done].tolist())
            self._recent_lengths.extend(self._ep_lengths[done].tolist())
            self.num_episodes += int(done.sum())
            self._ep_returns[done] = 0.0
            self._ep_lengths[done] = 0

    # ----- learning ----------------------------------------------------------------------

    def _set_learning_rate(self, progress_remaining: float) -> None:
        if not self.settings.anneal_lr:
            return
        for opt in self._optimizers().values():
            for group in opt.param_groups:
                group["lr"] = (
                    group.get("initial_lr", self.settings.learning_rate) * progress_remaining
                )

    def learn(
        self,
        total_timesteps: int,
        progress_bar: bool = True,
        callback: Callable[[OnPolicyAlgorithm], bool | None] | None = None,
        reset_num_timesteps: bool = True,
    ) -> OnPolicyAlgorithm:
        """Train for ``total_timesteps`` env steps (rounded up to whole rollouts).

        Args:
            total_timesteps: Env steps to train for (``reset_num_timesteps=False``: more).
            progress_bar: Show a tqdm bar (steps, episodes, mean return, steps/s).
            callback: Called after every update with the algorithm; returning False stops.
            reset_num_timesteps: As in SB3: False continues counting (``--resume``).
        """
        from tqdm.auto import tqdm

        if reset_num_timesteps:
            self.num_timesteps = 0
            self._obs = None
        target = self.num_timesteps + total_timesteps
        for opt in self._optimizers().values():
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])
        bar = tqdm(total=target, initial=self.num_timesteps, disable=not progress_bar, unit="step")
        next_eval = self._next_multiple(self.settings.eval_freq)
        try:
            while self.num_timesteps < target:
                start, steps_before = time.perf_counter(), self.num_timesteps
                self._set_learning_rate(1.0 - self.num_timesteps / target)
                self.collect_rollouts()
                logs = self.train()
                self.policy.eval()
                self.num_updates += 1
                self.wall_time += time.perf_counter() - start
                fps = (self.num_timesteps - steps_before) / (time.perf_counter() - start)
                row = {"time/fps": fps, "time/episodes": self.num_episodes, **logs}
                if self._recent_returns:
                    row["rollout/ep_rew_mean"] = float(np.mean(self._recent_returns))
                    row["rollout/ep_len_mean"] = float(np.mean(self._recent_lengths))
                if next_eval and self.num_timesteps >= next_eval:
                    row.update({f"eval/{k}": v for k, v in self._periodic_eval().items()})
                    next_eval = self._next_multiple(self.settings.eval_freq)
                self.logger.record(row, self.num_timesteps)
                bar.update(self.num_timesteps - steps_before)
                bar.set_postfix(
                    episodes=self.num_episodes,
                    ret=f"{row.get('rollout/ep_rew_mean', float('nan')):.3f}",
                    sps=f"{fps:.0f}",
                )
                if callback is not None and callback(self) is False:
                    break
        finally:
            bar.close()
        return self

    def _next_multiple(self, freq: int) -> int:
        return 0 if not freq else (self.num_timesteps // freq + 1) * freq

    def _periodic_eval(self) -> dict[str, float]:
        metrics = scalar_metrics(self.evaluate(self.settings.eval_split))
        self.eval_history.append({"timesteps": self.num_timesteps, **metrics})
        return metrics

    def evaluate(self, split: str = "validation") -> Any:
        """Deterministic evaluation on every example of ``split`` with ``textgym.evaluate``.

        Returns its ``EvaluationResult`` (metrics, report text, predictions, mean return).
        """
        import textgym

        if self.env_id is None:
            raise TextgymError("evaluation needs an env created from a registered id")
        kwargs = {k: v for k, v in self.env_kwargs.items() if k not in ("split", "render_mode")}
        return textgym.evaluate(self, self.env_id, split=split, **kwargs)

    # ----- inference ---------------------------------------------------------------------

    @torch.no_grad()
    def predict(
        self,
        obs: dict[str, np.ndarray],
        deterministic: bool = True,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, None]:
        """Actions for one observation or a batch (SB3's signature; the second item is None).

        Consecutive calls with the same contexts (the steps of an NER sentence) reuse
        the cached encoding.
        """
        single = np.asarray(obs["input_ids"]).ndim == 1
        if single:
            obs = {k: np.asarray(v)[None] for k, v in obs.items()}
            action_masks = None if action_masks is None else np.asarray(action_masks)[None]
        obs = {k: np.asarray(v) for k, v in obs.items()}
        obs_t = obs_to_tensors(obs, self.device)
        if self._predict_version != self.num_updates:
            self._predict_cache.clear()
            self._predict_version = self.num_updates
        self._predict_cache.update(obs, obs_t)
        logits, _ = self._predict_cache.heads(obs_t)
        masks = None if action_masks is None else torch.as_tensor(action_masks, device=self.device)
        if deterministic:
            actions = self.policy.distribution(logits, masks).probs.argmax(-1)
        else:
            actions, _ = self._sample(logits, masks)
        actions = actions.cpu().numpy()
        return (actions[0] if single else actions), None

    _predict_version = -1

    # ----- checkpoints -------------------------------------------------------------------

    def hyperparameters(self) -> dict[str, Any]:
        return dataclasses.asdict(self.settings)

    def save(self, path: str | Path, training_state: bool = False) -> None:
        """Save to a directory: ``model.safetensors`` + ``config.json`` (no pickle).

        With ``training_state`` also the optimiser state, RNG states and episode counters,
        so ``--resume`` continues where the run stopped. The directory is written aside
        and swapped in, so an interrupted save leaves the previous checkpoint intact.
        """
        path = Path(path)
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
            "wall_time": self.wall_time,
            "eval_history": self.eval_history,
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
            atomic_save_tensors(tmp / "training_state.safetensors", tensors)
            config["training_state"] = {
                "optimizers": optim_json,
                "numpy_rng": self.rng.bit_generator.state,
                "log_rows": self.logger.rows,
            }
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
        try:
            policy = policy_from_config(config["policy"])
        except Exception as err:  # transformers' config classes raise their own types too
            raise TextgymError(
                f"{path}: corrupt checkpoint: cannot rebuild the policy from config.json "
                f"({type(err).__name__}: {err})"
            ) from err
        try:
            policy.load_state_dict(read_tensors(path / "model.safetensors"))
        except RuntimeError as err:
            raise TextgymError(f"{path}: weights do not match the saved config ({err})") from err
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
    if "wall_time" in config and not _TYPES["float"](config["wall_time"]):
        raise bad("'wall_time' is not a number")
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


def scalar_metrics(result: Any) -> dict[str, float]:
    """The top-level numbers of an ``EvaluationResult`` plus ``mean_reward`` (SB3's name)."""
    out = {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))}
    out["mean_reward"] = float(result.mean_return)
    return out


def normalize(advantages: torch.Tensor) -> torch.Tensor:
    """Zero-mean, unit-std advantages (left alone for a single step)."""
    if advantages.numel() < 2:
        return advantages
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


def explained_variance(values: np.ndarray, returns: np.ndarray) -> float:
    """1 - Var[returns - values] / Var[returns]: 1 is a perfect critic, <= 0 a useless one."""
    var = np.var(returns)
    return float("nan") if var == 0 else float(1 - np.var(returns - values) / var)
