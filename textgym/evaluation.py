"""Whole-split evaluation of a policy through a native vector env.

:func:`evaluate` runs every example of a split exactly once, in playlist mode
(``reset(options={"indices": range(n)})``), and scores the predictions the envs report in
``final_info`` / ``final_obs`` with the task's corpus metric (:mod:`textgym.metrics`): seqeval entity F1 for
NER, accuracy and macro-F1 for classification, ROUGE-1/2/L for summarization.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from textgym import metrics
from textgym.errors import TextgymError

__all__ = ["EvaluationResult", "evaluate", "slot_infos"]

# Keys of each task's prediction and gold answer in EvaluationResult.predictions.
_TASK_KEYS = {
    "ner": ("pred_tags", "gold_tags"),
    "classification": ("pred_label", "label"),
    "summarization": ("summary", "reference"),
}


def _answer(envs: Any, task: str, info: dict, final_obs: dict, slot: int) -> tuple[Any, Any]:
    """(prediction, gold) of one finished episode.

    The prediction comes from what the env reports (the final tags, the chosen label, the
    decoded summary); the gold answer from the split's records. Words an NER episode
    dropped for lack of room count as tagged ``O``, so their entities are missed.
    """
    env = envs.unwrapped
    example = env.examples[info["index"]]
    if task == "ner":
        kept = len(example.words) - int(info["words_dropped"])
        tags = [env.labels[t] for t in final_obs["tags"][slot, :kept]]
        return tags + ["O"] * (len(example.words) - kept), list(example.tags)
    if task == "classification":
        return env.labels[int(info["pred"])], example.label
    return info["summary"], example.target


@dataclass
class EvaluationResult:
    """What :func:`evaluate` returns.

    Attributes:
        metrics: The task's corpus metrics. NER: ``f1``, ``precision``, ``recall`` (entity
            micro averages), ``accuracy`` (token), ``macro_f1``, ``weighted_f1``,
            ``per_type``. Classification: ``accuracy``, ``macro_f1``, ``per_class``, ...
            Summarization: ``rouge1``, ``rouge2``, ``rougeL`` (mean F-measure) and their
            ``_precision`` / ``_recall``.
        report: The metric table as text (seqeval's / scikit-learn's layout).
        predictions: One dict per example, in example order: ``index``, ``return``, the
            prediction and the gold answer (``pred_tags``/``gold_tags``,
            ``pred_label``/``label``, ``summary``/``reference``).
        mean_return: Mean undiscounted episode return.
        num_episodes: Episodes scored (the number of examples in the split).
    """

    metrics: dict
    report: str
    predictions: list = field(default_factory=list)
    mean_return: float = 0.0
    num_episodes: int = 0


#: The playlist reads ``infos["final_obs"]`` / ``["final_info"]``: same-step autoreset.
_SAME_STEP = {"autoreset_mode": AutoresetMode.SAME_STEP}


def _accepts_keyword(fn: Callable, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins and C callables without a signature
        return False


def _batch_policy(policy: Any, envs: gym.vector.VectorEnv) -> Callable[[dict, dict], np.ndarray]:
    """``obs -> actions`` for a callable or an SB3-style ``.predict`` policy."""
    action_masks = getattr(envs.unwrapped, "action_masks", None)
    sb3_style = hasattr(policy, "predict")
    if not sb3_style and not callable(policy):
        raise TextgymError(
            f"policy must be a callable (obs batch -> actions) or have .predict(obs, "
            f"deterministic=True) -> (actions, state); got {type(policy).__name__}"
        )
    fn = policy.predict if sb3_style else policy
    pass_masks = action_masks is not None and _accepts_keyword(fn, "action_masks")
    pass_infos = _accepts_keyword(fn, "infos")

    name = f"{getattr(fn, '__qualname__', type(policy).__name__)}()"

    def act(obs: dict, infos: dict) -> np.ndarray:
        kwargs = {"action_masks": action_masks()} if pass_masks else {}
        if pass_infos:
            kwargs["infos"] = infos
        if sb3_style:
            out = fn(obs, deterministic=True, **kwargs)
            if not isinstance(out, tuple) or len(out) != 2:
                raise TextgymError(
                    f"the policy's {name} returned {_describe(out)}; an SB3-style predict "
                    "returns a tuple (actions, state)"
                )
            actions = out[0]
        else:
            actions = fn(obs, **kwargs)
            if isinstance(actions, tuple):
                raise TextgymError(
                    f"the policy {name} returned a tuple ({_describe(actions)}); a callable "
                    f"policy returns the actions alone, {envs.num_envs} of them (an object "
                    "with .predict returns (actions, state))"
                )
        return _check_actions(actions, envs.num_envs, name)

    return act


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"{type(value).__name__} {value!r}"[:80]


def _check_actions(actions: Any, num_envs: int, name: str) -> np.ndarray:
    """The policy's actions as a ``(num_envs,)`` array, or a TextgymError saying what it
    returned instead."""
    try:
        array = np.asarray(actions)
    except (ValueError, TypeError):  # ragged lists
        array = None
    if array is None or array.dtype.kind not in "iuf" or array.size != num_envs:
        raise TextgymError(
            f"the policy {name} returned {_describe(actions)}; it must return one integer "
            f"action per env: {num_envs} of them, shape ({num_envs},)"
        )
    return array.reshape(num_envs)


def _to_python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def slot_infos(info: dict, num_envs: int) -> list[dict]:
    """Split a vector env's ``info`` dict of arrays into one plain dict per slot.

    Gymnasium's vector infos hold, for each key, an array over slots plus a boolean mask
    ``"_key"`` of the slots that set it; nested dicts (such as ``final_info`` in SAME_STEP
    autoreset mode) follow the same layout.

    Args:
        info: A vector info dict, e.g. ``infos["final_info"]``.
        num_envs: Number of slots.

    Returns:
        ``num_envs`` dicts; slot ``i``'s holds the keys whose mask is set at ``i``.
    """
    out: list[dict] = [{} for _ in range(num_envs)]
    for key, value in info.items():
        if key.startswith("_"):
            continue
        if isinstance(value, dict):
            for slot, sub in enumerate(slot_infos(value, num_envs)):
                if sub:
                    out[slot][key] = sub
            continue
        mask = info.get(f"_{key}")
        slots = range(num_envs) if mask is None else np.flatnonzero(mask)
        for slot in slots:
            out[slot][key] = _to_python(value[slot])
    return out


def _run_playlist(
    envs: gym.vector.VectorEnv, act: Callable[[dict, dict], np.ndarray], n: int
) -> list[tuple[dict, float]]:
    """Step ``envs`` until examples 0..n-1 have each finished once: (final_info, return)."""
    num_envs = envs.num_envs
    obs, infos = envs.reset(seed=0, options={"indices": range(n)})
    # Mirror of the env's playlist: slots take the next listed example as they finish (lowest
    # slot first). Episodes started after the list ran out are random draws and not scored.
    on_playlist = np.ones(num_envs, bool)
    assigned = num_envs
    returns = np.zeros(num_envs)
    episodes: dict[int, tuple[dict, float]] = {}
    while len(episodes) < n:
        if not on_playlist.any():
            missing = sorted(set(range(n)) - episodes.keys())[:10]
            raise TextgymError(
                f"the env finished every playlist episode but never reported examples {missing} "
                "in final_info['index']"
            )
        obs, rewards, terminated, truncated, infos = envs.step(act(obs, infos))
        returns += rewards
        done = np.flatnonzero(np.logical_or(terminated, truncated))
        if len(done) == 0:
            continue
        finished = slot_infos(infos["final_info"], num_envs)
        for slot in done:
            info = finished[slot]
            if on_playlist[slot] and info["index"] not in episodes:
                pred, gold = _answer(envs, envs.unwrapped.task, info, infos["final_obs"], slot)
                episodes[info["index"]] = ({"pred": pred, "gold": gold}, float(returns[slot]))
            on_playlist[slot] = assigned < n
            assigned += 1
            returns[slot] = 0.0
    return [episodes[i] for i in range(n)]


def _score(task: str, labels: tuple, gold: list, pred: list) -> tuple[dict, str]:
    if task == "ner":
        return metrics.entity_scores(gold, pred), metrics.entity_report(gold, pred)
    if task == "classification":
        names = list(labels) if set(gold) | set(pred) <= set(labels) else None
        return (
            metrics.classification_scores(gold, pred, labels=names),
            metrics.classification_report(gold, pred, labels=names),
        )
    return metrics.rouge_scores(gold, pred), metrics.rouge_report(gold, pred)


def evaluate(
    policy: Any,
    env_id: str,
    split: str = "test",
    *,
    num_envs: int = 64,
    **env_kwargs: Any,
) -> EvaluationResult:
    """Run ``policy`` once on every example of a split and score it with the task's metric.

    The envs come from ``gymnasium.make_vec(env_id, num_envs=min(num_envs, n), split=split,
    **env_kwargs)`` (the native batched env) and run in playlist mode, so the result is a
    pure function of the policy: every example ``0..n-1`` is scored exactly once, whatever
    ``num_envs``.

    Args:
        policy: Either a callable taking the batch observation dict (arrays with a leading
            ``num_envs`` axis) and returning ``num_envs`` actions, or an object with an
            SB3-style ``predict(obs, deterministic=True) -> (actions, state)``. For envs with
            ``action_masks()`` (summarization), the masks are passed as the ``action_masks``
            keyword when the callable or ``predict`` has a parameter of that name, and the
            vector env's current ``infos`` (``infos["index"]``: each slot's example) as the
            ``infos`` keyword likewise.
        env_id: A textgym env id, e.g. ``"TextNER-v0"``.
        split: The split to evaluate on.
        num_envs: Episodes run side by side (capped at the split size).
        **env_kwargs: Passed to the env (``dataset``, ``max_tokens``, ...).

    Returns:
        The metrics, the report text, the per-example predictions and the mean return.

    Raises:
        TextgymError: If ``num_envs`` < 1 or the policy is neither callable nor has
            ``predict``.
    """
    if num_envs < 1:
        raise TextgymError(f"num_envs must be >= 1, got {num_envs}")
    envs = gym.make_vec(env_id, num_envs=num_envs, split=split, **_SAME_STEP, **env_kwargs)
    try:
        n = envs.unwrapped.num_examples
        if n < num_envs:
            envs.close()
            envs = gym.make_vec(env_id, num_envs=n, split=split, **_SAME_STEP, **env_kwargs)
        task = envs.unwrapped.task
        labels = tuple(envs.unwrapped.labels)
        episodes = _run_playlist(envs, _batch_policy(policy, envs), n)
    finally:
        envs.close()

    pred_key, gold_key = _TASK_KEYS[task]
    predictions = [
        {"index": i, "return": ret, pred_key: info["pred"], gold_key: info["gold"]}
        for i, (info, ret) in enumerate(episodes)
    ]
    gold = [p[gold_key] for p in predictions]
    pred = [p[pred_key] for p in predictions]
    scores, report = _score(task, labels, gold, pred)
    return EvaluationResult(
        metrics=scores,
        report=report,
        predictions=predictions,
        mean_return=float(np.mean([ret for _, ret in episodes])) if episodes else 0.0,
        num_episodes=len(episodes),
    )
