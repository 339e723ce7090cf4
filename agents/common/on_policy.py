"""The on-policy loop shared by the agents: settings, training loop, updates' minibatches,
evaluation and inference. Rollout collection is in ``rollouts.py``, save / load in
``checkpoints.py``.

An algorithm subclasses :class:`OnPolicyAlgorithm`, names its settings dataclass and
implements :meth:`OnPolicyAlgorithm.train` (its update rule) and, when it has more than
one optimiser, :meth:`OnPolicyAlgorithm._optimizers`.

Where the time goes: the encoder. Rollouts keep one encoding per vector-env slot
(:class:`ContextCache`) and re-encode a slot only when its context (``input_ids``)
changes, i.e. once per episode; after each update the cache is dropped because the
weights changed. Updates encode each unique context of a minibatch once
(:meth:`RolloutBuffer.minibatches`). The hot path has no Python loop over tokens or
slots.

Several processes (``textgym train --nproc N``, ``torchrun``, or a script that initialises
``torch.distributed``): each rank plays its own ``n_envs`` slots and gradients are
averaged over ranks; see ``agents/common/distributed.py``.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

from textgym.errors import TextgymError

from .buffers import Minibatch, RolloutBuffer
from .caches import ContextCache, FrozenEncodings
from .checkpoints import CheckpointMixin
from .distributed import Distributed
from .encoders import check_positions
from .env_utils import (
    env_attr,
    env_info,
    env_spec,
    episode_step_bound,
    make_vector_env,
    resolve_device,
)
from .gae import compute_gae
from .group import ExampleSchedule, check_binary_rewards, on_path
from .logger import Logger
from .optim import make_adam
from .policies import ActorCritic, make_policy, obs_to_tensors
from .rollouts import RolloutMixin

REWARD_OBJECTIVES = ("expected", "loglik")


@dataclass
class OnPolicySettings:
    """Hyperparameters every on-policy algorithm here shares (SB3 names)."""

    n_envs: int = 16
    """Slots of the native vector env used for rollouts (per process when training on
    several: a rollout is then ``world_size * n_envs * n_steps`` env steps)."""
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
    """Standardise advantages per minibatch (with several processes: each process's own
    minibatch; REINFORCE standardises over the whole rollout of every process)."""
    scale_advantage_by_value: bool = False
    """Divide each state's advantage by its value ``max(V(s), value_floor)``.

    For 0/1 rewards with ``gamma=0`` (NER token reward) V(s) estimates the probability
    of the correct action, and the expected update becomes the cross-entropy gradient
    instead of ``pi(gold) * grad log pi(gold)``, which vanishes exactly where the policy
    is wrong and collapses NER to all-"O" (DESIGN.md, "the known hard part")."""
    value_floor: float = 0.05
    """Lower bound on the divisor when scaling advantages, V(s) or ``1 - pi(a)``
    (caps the weight at 1/value_floor)."""
    reward_objective: str = "expected"
    """What each step's advantage makes the update follow. ``"expected"``: the expected
    return (GAE from the critic). ``"loglik"``: for deterministic per-step 0/1 rewards that
    are 1 for exactly one action (NER's token reward, a classification label), with
    ``gamma=0``, the log-likelihood of each observed reward, a Bernoulli with success
    probability ``pi(a)``: advantage 1 where the action scored (the gradient of
    ``log pi(a)``) and ``-pi_old(a) / (1 - pi_old(a))`` where it did not (the gradient of
    ``log(1 - pi(a))``; at most ``1 / value_floor``): a wrong action the policy was sure of
    (``O`` on an entity) is pushed down hard and its mass goes to the others. The expected
    reward's gradient, ``pi(gold) * grad log pi(gold)`` for a word, vanishes exactly where
    the policy is wrong; this one does not, and it needs no critic. RLOO's ``"loglik"``
    objective for a group of one sample. Keep ``normalize_advantage`` off with it (its
    scale is the objective's)."""
    off_path_weight: float = 1.0
    """For per-step 0/1 rewards (NER's token reward): the factor on the advantage of a
    step whose previous action in the episode scored 0, a state the right actions never
    reach (:func:`~.group.on_path`; for the tagger, a wrong previous tag). 0 learns only
    in the states after the right previous action, supervised teacher forcing's states."""
    batch_size: int = 256
    """Steps per minibatch (whole contexts are kept together); per process when training
    on several, whose minibatch gradients are averaged."""
    eval_freq: int = 0
    """Evaluate on ``eval_split`` every this many env steps, and once before training
    (step 0, the untrained policy); 0: never during learn."""
    eval_split: str = "validation"
    """Split used for periodic evaluation."""
    policy_kwargs: dict | None = None
    """Arguments of the policy class built from ``policy`` when it is a name (SB3's
    ``policy_kwargs``), e.g. ``{"previous_tag": false}`` for the NER tagger."""
    freeze_encoder: bool = False
    """Train only the heads. The encoder's output for a context then never changes, so
    each distinct context is encoded once for the whole run (:class:`FrozenEncodings`):
    a corpus of N documents costs N encoder passes however many steps are taken, which
    makes MiniLM training on a CPU take minutes."""
    freeze_embeddings: bool = False
    """Keep the encoder's token-embedding table fixed and train the rest of it. A batch
    touches a few hundred of MiniLM's 30522 rows, but the table's gradient, its optimiser
    step and clipping cost all 11.7M of its weights (half the model) at every update:
    RLOO on WNUT-16 trains 1.4-1.5x more words per second without them (but learnt less
    per word there: test entity-F1 0.261 after 166k words against 0.301 after 111k in
    the same 6 minutes)."""
    group_size: int = 1
    """Slots that play the same example side by side (``G``). Above 1, rollouts are
    *group rollouts* (``agents/common/group.py``): each rollout draws ``n_envs / G``
    examples, every slot plays one whole episode (no episode is cut at a rollout
    boundary, so none is encoded twice), and each example is encoded once for its
    group in the rollout and once per update minibatch. ``n_envs`` must be a multiple
    of it, and the env must accept ``reset(options={"index": indices})`` (textgym's
    vector envs do)."""
    episode_rollouts: bool = False
    """Each rollout plays exactly one whole episode per slot, on examples the agent draws
    (an epoch-wise shuffle, through ``reset(options={"index": ...})``), and encodes them
    all in one batch at its start: no sentence is cut at a rollout boundary and encoded
    twice, and the encoder never runs on one or two contexts at a time. ``n_steps`` is
    then unused (a rollout is ``n_envs`` episodes). Always on when ``group_size > 1``."""
    distinct_actions: bool = False
    """In group rollouts, the members of a group take different actions at each step
    (sampling without replacement, each member from its own distribution), so a group
    of ``G`` tries ``G`` actions wherever the policy is unsure."""
    single_pass: bool = True
    """Where the update is one gradient step at the weights that played the rollout, on
    episode rollouts (``episode_rollouts`` or ``group_size > 1``), reuse the rollout's own
    forward pass, run with autograd, as the update's: the same gradient without encoding
    the contexts again, so an example costs one encoder forward and one backward, as in
    supervised training. That holds for REINFORCE (without ``n_critic_updates``) and RLOO,
    and for PPO and GRPO with ``n_epochs=1`` on a rollout that fits in one minibatch of
    ``batch_size`` steps (later minibatches would be evaluated at weights the earlier ones
    changed); TRPO's line search evaluates other weights, so it never does. The rollout
    then keeps its autograd graph until the update (memory of one forward over the whole
    rollout, as a supervised batch of the same examples). False re-encodes in
    minibatches of ``batch_size`` steps (bounded memory for very large rollouts)."""
    context_cache: bool = True
    """Encode each context once per rollout and once per minibatch (the design). False
    encodes the context again at every env step and for every step of a minibatch, as a
    naive agent does; it exists to measure what the cache saves
    (``benchmarks/agent_throughput.py``)."""


class Evaluated(NamedTuple):
    """A minibatch with the policy's outputs on its steps (autograd graph intact)."""

    mb: Minibatch
    log_prob: torch.Tensor
    entropy: torch.Tensor
    values: torch.Tensor
    dist: torch.distributions.Categorical
    hidden: torch.Tensor | None = None
    """The encodings of ``mb.contexts``, where asked for."""


class OnPolicyAlgorithm(RolloutMixin, CheckpointMixin):
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
        if self.settings.reward_objective not in REWARD_OBJECTIVES:
            raise TextgymError(
                f"reward_objective must be one of {REWARD_OBJECTIVES}, "
                f"not {self.settings.reward_objective!r}"
            )
        self.seed = seed
        self.dist = Distributed()
        self.device = self.dist.device(resolve_device(device))
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
            self.policy = make_policy(
                policy, self.env_info, context_length, self.settings.policy_kwargs
            )
        # dropout off: the update must see the same probabilities the rollout sampled from
        self.policy.to(self.device).eval()
        if self.settings.freeze_embeddings:
            self.policy.encoder.get_input_embeddings().requires_grad_(False)
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
        # the step count the last learn() ran to; whole rollouts can end past it, and
        # --resume of a run that reached it (killed before its summary) only finishes it
        self.target_timesteps: int | None = None
        self.wall_time = 0.0  # seconds spent in learn(), over resumed runs too
        self.eval_history: list[dict[str, float]] = []
        self.logger = Logger(log_dir if self.dist.is_main else None)  # rank 0 writes
        self._setup()
        # single_pass: episode rollouts run the encoder with autograd on and keep its
        # output, so the rollout's encoder pass is also the update's; see _rollout_pass
        self.rollout_grad = (
            self.settings.single_pass and self._episode_mode and self._single_step_update()
        )
        self.rollout_encoding: tuple[torch.Tensor, dict[str, torch.Tensor]] | None = None
        self.rollout_log_probs: np.ndarray | None = None
        self._cache = ContextCache(self.policy)
        self._predict_cache = ContextCache(self.policy)
        self._obs: dict[str, np.ndarray] | None = None
        self._ep_returns = np.zeros(self.env.num_envs)
        self._ep_lengths = np.zeros(self.env.num_envs, np.int64)
        self._recent_returns: deque[float] = deque(maxlen=100)
        self._recent_lengths: deque[int] = deque(maxlen=100)
        self._finished: tuple[list[float], list[int]] = ([], [])  # episodes of this rollout
        self.schedule: ExampleSchedule | None = None
        # every rank must draw the same examples to split them: with several ranks the
        # schedule has its own generator (self.rng's draws differ between ranks)
        self.schedule_rng = np.random.default_rng(seed) if self.dist.enabled else self.rng
        n_steps = self.settings.n_steps
        if self._episode_mode:
            g = self.settings.group_size
            if self.env.num_envs % g:
                raise TextgymError(
                    f"group_size={g} must divide n_envs={self.env.num_envs} (the slots of "
                    "the vector env are split into groups of group_size)"
                )
            self.schedule = ExampleSchedule(int(env_attr(self.env, "num_examples")))
            n_steps = episode_step_bound(self.env)
        if self.settings.distinct_actions and self.settings.group_size < 2:
            raise TextgymError("distinct_actions=True needs group_size > 1")
        self.buffer = RolloutBuffer(
            self.env.single_observation_space,
            self.policy.context_keys,
            n_steps,
            self.env.num_envs,
            action_mask_size=self.env_info["n_actions"] if self._has_masks else None,
        )

    # ----- algorithm hooks -------------------------------------------------------------

    def _setup(self) -> None:
        """Create optimisers (default: one Adam over the whole policy)."""
        trainable = [p for p in self.policy.parameters() if p.requires_grad]
        self.optimizer = make_adam(trainable, self.settings.learning_rate)

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Named optimisers whose state checkpoints keep (for ``--resume``)."""
        return {"optimizer": self.optimizer}

    def _frozen_modules(self) -> dict[str, torch.nn.Module]:
        """Named networks besides the policy that checkpoints keep (a reference policy)."""
        return {}

    def train(self) -> dict[str, float]:
        """One update from ``self.buffer`` (advantages and returns filled); returns logs."""
        raise NotImplementedError

    def _single_step_update(self) -> bool:
        """Whether the update can be one gradient step at the rollout's weights (then
        ``single_pass`` keeps the rollout's forward pass for it). Default: no."""
        return False

    def _keeps_rollout_log_probs(self) -> bool:
        """Whether a group rollout keeps each step's log-probabilities of every action in
        ``rollout_log_probs`` ``(T, N, A)`` (for an objective over actions the slot did not
        take). Default: no."""
        return False

    def _compute_advantages(self) -> None:
        """GAE from the critic (algorithms without one override this)."""
        s, buf = self.settings, self.buffer
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
        if s.reward_objective != "expected":
            setting = f"reward_objective={s.reward_objective!r}"
            if s.gamma != 0:
                raise TextgymError(
                    f"{setting} needs gamma=0 (each step its own reward), not gamma={s.gamma}"
                )
            check_binary_rewards(buf.rewards[buf.valid], setting)
            prob = np.exp(buf.log_probs.astype(np.float64))
            # a wrong action the policy was sure of weighs at most 1 / value_floor
            adv = np.where(buf.rewards > 0, 1.0, -prob / np.maximum(1.0 - prob, s.value_floor))
            buf.advantages[:] = np.where(buf.valid, adv, 0.0)
        if s.off_path_weight != 1.0:
            on = on_path(buf.rewards, buf.terminated | buf.truncated)
            buf.advantages[:] = np.where(on, buf.advantages, s.off_path_weight * buf.advantages)

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
            progress_bar: Show a tqdm bar: steps, steps/s (of the whole call, evaluation
                included), the mean return of the last 100 episodes and the latest periodic
                evaluation's headline metric (each evaluation also prints a line). With
                ``eval_freq``, a fresh run first evaluates the untrained policy (step 0).
            callback: Called after every update with the algorithm; returning False stops.
            reset_num_timesteps: As in SB3: False continues counting (``--resume``).

        With several processes (``agents/common/distributed.py``) every rank calls
        ``learn`` with the same arguments; ``total_timesteps`` counts the env steps of
        all ranks, rank 0 alone shows the bar, logs and evaluates, and the run stops
        on every rank when ``callback`` returns False on any.
        """
        from tqdm.auto import tqdm

        if reset_num_timesteps:
            self.num_timesteps = 0
            self._obs = None
        target = self.num_timesteps + total_timesteps
        self.target_timesteps = target
        if self.dist.enabled:
            self.dist.check_same(
                "agent, settings, seed or step count",
                (self.name, self.hyperparameters(), self.seed, self.num_timesteps, target),
            )
            self.dist.broadcast_modules([self.policy, *self._frozen_modules().values()])
        for opt in self._optimizers().values():
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])
        bar = tqdm(
            total=target,
            initial=self.num_timesteps,
            disable=not (progress_bar and self.dist.is_main),
            unit="step",
        )
        next_eval = self._next_multiple(self.settings.eval_freq)
        postfix: dict[str, str] = {}
        if next_eval and self.num_timesteps == 0 and not self.eval_history and self.dist.is_main:
            # the untrained policy: learning curves start at step 0
            metrics = self._periodic_eval()
            name, value = headline_metric(metrics)
            postfix[f"{self.settings.eval_split}_{name}"] = f"{value:.3f}"
            bar.write(f"0 steps (untrained): {self.settings.eval_split} {name} {value:.4f}")
        try:
            while self.num_timesteps < target:
                start, steps_before = time.perf_counter(), self.num_timesteps
                self._set_learning_rate(1.0 - self.num_timesteps / target)
                self.collect_rollouts()
                logs = self._mean_over_ranks(self.train())
                self.policy.eval()
                self.num_updates += 1
                self.wall_time += time.perf_counter() - start
                fps = (self.num_timesteps - steps_before) / (time.perf_counter() - start)
                row = {"time/fps": fps, "time/episodes": self.num_episodes, **logs}
                if self._recent_returns:
                    row["rollout/ep_rew_mean"] = float(np.mean(self._recent_returns))
                    row["rollout/ep_len_mean"] = float(np.mean(self._recent_lengths))
                    postfix["return"] = f"{row['rollout/ep_rew_mean']:.3f}"
                if next_eval and self.num_timesteps >= next_eval:
                    # rank 0 evaluates; the others wait for it at their next collective
                    if self.dist.is_main:
                        metrics = self._periodic_eval()
                        row.update({f"eval/{k}": v for k, v in metrics.items()})
                        name, value = headline_metric(metrics)
                        postfix[f"{self.settings.eval_split}_{name}"] = f"{value:.3f}"
                        bar.write(
                            f"{self.num_timesteps} steps: {self.settings.eval_split} {name} "
                            f"{value:.4f}"
                        )
                    next_eval = self._next_multiple(self.settings.eval_freq)
                self.logger.record(row, self.num_timesteps)
                # whole rollouts can end past the target: grow the bar instead of overflowing it
                bar.total = max(bar.total, self.num_timesteps)
                bar.update(self.num_timesteps - steps_before)
                bar.set_postfix(postfix, refresh=False)
                if callback is not None and self.dist.any(callback(self) is False):
                    break
        finally:
            bar.close()
        return self

    def _mean_over_ranks(self, logs: dict[str, float]) -> dict[str, float]:
        """Each ``train/*`` value averaged over ranks (each rank computed it on its data)."""
        if not self.dist.enabled:
            return logs
        ranks = self.dist.all_gather(logs)
        keys = [k for k in logs if all(k in r for r in ranks)]
        return {k: float(np.mean([r[k] for r in ranks])) for k in keys}

    def _minibatches(self, batch_size: int) -> Iterator[Minibatch]:
        """``self.buffer.minibatches`` with the same number of minibatches on every rank.

        An algorithm that takes a collective step per minibatch (PPO, TRPO, the critic
        fits) must iterate this: ranks of a group rollout hold different numbers of
        valid steps, and one more minibatch on one rank would wait for ever on the
        others. Every rank takes the fewest any rank has; a rank with more joins its
        last ones into one (its last minibatch is larger than ``batch_size``).
        """
        batches = self.buffer.minibatches(batch_size, self.rng, self.device)
        if not self.dist.enabled:
            yield from batches
            return
        count = self.dist.min_int(-(-int(self.buffer.valid.sum()) // batch_size))
        rest = []
        for i, mb in enumerate(batches):
            if i < count - 1:
                yield mb
            else:
                rest.append(mb)
        if rest:
            yield concat_minibatches(rest)

    def _rollout_pass(self, one_minibatch_of: int | None = None) -> Evaluated | None:
        """The rollout's valid steps as one minibatch, grouped by example, with the
        policy's outputs on them from the rollout's own encoder pass (autograd graph
        intact; the heads run again, once over all steps), or None where there is none
        (``single_pass`` off, or already used).

        ``one_minibatch_of``: only where every rank's rollout fits in one minibatch of
        that many steps (an algorithm that steps once per minibatch: PPO); otherwise the
        kept graph is dropped and None returned. Either way the encoding is used once.
        """
        encoding, self.rollout_encoding = self.rollout_encoding, None
        if encoding is None:
            return None
        buf = self.buffer
        if one_minibatch_of is not None:
            count = -(-int(buf.valid.sum()) // one_minibatch_of)
            if self.dist.min_int(count) > 1:  # _minibatches takes the fewest of any rank
                return None
        hidden, contexts = encoding
        steps = np.flatnonzero(buf.valid.reshape(-1))  # row-major: step t, slot i
        group = steps % buf.num_envs // self.settings.group_size  # its row of hidden
        # grouped by example, as the minibatches are: the backward of hidden[group] adds
        # the rows of one example into its states, and on a multi-threaded CPU that sum is
        # reproducible only when each example's rows are adjacent (interleaved, two runs
        # of one seed differ in the last bits)
        order = np.argsort(group, kind="stable")
        mb = buf.get(steps[order], self.device)
        ctx_index = torch.as_tensor(group[order], device=self.device)
        return Evaluated(
            mb,
            *self.policy.evaluate_actions(
                contexts, ctx_index, mb.obs, mb.actions, mb.action_masks, hidden=hidden
            ),
        )

    def _evaluated_minibatches(
        self, batch_size: int, one_step: bool = True, keep_hidden: bool = False
    ) -> Iterator[Evaluated]:
        """One pass over the rollout: each minibatch with the policy's outputs on it.

        The rollout's own forward pass where :meth:`_rollout_pass` gives it (``one_step``:
        the update takes one gradient step in all, so it serves whatever the minibatch
        count; else only where the rollout is one minibatch), otherwise the minibatches of
        :meth:`_minibatches`, each unique context encoded once (``keep_hidden``: the
        encodings are kept in ``Evaluated.hidden``).
        """
        single = self._rollout_pass(None if one_step else batch_size)
        if single is not None:
            yield single
            return
        for mb in self._minibatches(batch_size):
            hidden = self.policy.encode(mb.contexts)
            log_prob, entropy, values, dist = self.policy.evaluate_actions(
                mb.contexts, mb.ctx_index, mb.obs, mb.actions, mb.action_masks, hidden=hidden
            )
            yield Evaluated(mb, log_prob, entropy, values, dist, hidden if keep_hidden else None)

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
        # int8 masks (Gymnasium's sampler convention) as well as bool ones: nonzero = allowed
        masks = (
            None
            if action_masks is None
            else torch.as_tensor(np.asarray(action_masks) != 0, device=self.device)
        )
        if deterministic:
            actions = self.policy.distribution(logits, masks).probs.argmax(-1)
        else:
            actions, _ = self._sample(logits, masks)
        actions = actions.cpu().numpy()
        return (actions[0] if single else actions), None

    _predict_version = -1


def scalar_metrics(result: Any) -> dict[str, float]:
    """The top-level numbers of an ``EvaluationResult`` plus ``mean_reward`` (SB3's name)."""
    out = {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))}
    out["mean_reward"] = float(result.mean_return)
    return out


HEADLINE_METRICS = ("f1", "accuracy", "rougeL")


def headline_metric(metrics: dict[str, float]) -> tuple[str, float]:
    """The task's headline of an evaluation: entity-F1, accuracy or ROUGE-L (else the mean reward)."""
    for name in HEADLINE_METRICS:
        if name in metrics:
            return name, metrics[name]
    return "mean_reward", metrics["mean_reward"]


def concat_minibatches(batches: list[Minibatch]) -> Minibatch:
    """One minibatch holding the steps of ``batches`` (a context cut between two of them
    appears twice in its contexts, which changes nothing but one more encoding)."""
    if len(batches) == 1:
        return batches[0]
    first = batches[0]
    offsets = np.cumsum([0] + [len(next(iter(mb.contexts.values()))) for mb in batches[:-1]])
    return Minibatch(
        contexts={k: torch.cat([mb.contexts[k] for mb in batches]) for k in first.contexts},
        ctx_index=torch.cat(
            [mb.ctx_index + int(o) for mb, o in zip(batches, offsets, strict=True)]
        ),
        obs={k: torch.cat([mb.obs[k] for mb in batches]) for k in first.obs},
        actions=torch.cat([mb.actions for mb in batches]),
        old_log_probs=torch.cat([mb.old_log_probs for mb in batches]),
        old_values=torch.cat([mb.old_values for mb in batches]),
        advantages=torch.cat([mb.advantages for mb in batches]),
        returns=torch.cat([mb.returns for mb in batches]),
        action_masks=None
        if first.action_masks is None
        else torch.cat([mb.action_masks for mb in batches]),
        extras={k: torch.cat([mb.extras[k] for mb in batches]) for k in first.extras},
    )


def normalize(advantages: torch.Tensor) -> torch.Tensor:
    """Zero-mean, unit-std advantages (left alone for a single step)."""
    if advantages.numel() < 2:
        return advantages
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


def explained_variance(values: np.ndarray, returns: np.ndarray) -> float:
    """1 - Var[returns - values] / Var[returns]: 1 is a perfect critic, <= 0 a useless one."""
    var = np.var(returns)
    return float("nan") if var == 0 else float(1 - np.var(returns - values) / var)
