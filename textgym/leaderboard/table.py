"""From run directories to leaderboard rows: which runs may be pooled, and their statistics.

Two runs are pooled into one row (their seeds averaged) only when everything but the
seed agrees:

- the **env spec**: the env id and its kwargs, with the env's defaults filled in (a run
  that spelled out ``max_tokens=64`` pools with one that left it at its default of 64),
  the textgym version and the evaluation split; runs that differ here appear under
  separate spec letters (A, B, ...) of their env's table, with the difference spelled out;
- the **agent**: its name, encoder, hyperparameters and env-step budget (the requested
  ``--timesteps``: a run ends with its last whole rollout, and group rollouts with whole
  episodes, so the steps taken differ a little between seeds; a row shows their mean);
  variants of one agent under one spec are separate rows, and their note says what
  differs.

Rows are ranked within their spec by the mean of the task's metric over seeds (entity
F1, accuracy, ROUGE-L), ties broken by the IQM.

A run whose scores cannot be true (a fraction such as accuracy or F1 outside [0, 1], a
NaN or infinite score or mean return, the task's metric missing) is skipped with the
reason, so a row's seeds are exactly the runs its statistics are computed from.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textgym.leaderboard.io import RUN_SPEC, SUMMARY, read_summary
from textgym.leaderboard.stats import DEFAULT_RESAMPLES, Estimate, estimate

# task -> (summary metric key, display name)
TASK_METRICS = {
    "ner": ("f1", "entity F1"),
    "classification": ("accuracy", "accuracy"),
    "summarization": ("rougeL", "ROUGE-L"),
}
BASELINE_AGENTS = ("random", "majority", "lead", "supervised")
# Metrics that are fractions: a value outside [0, 1] is impossible.
FRACTION_METRICS = (
    "f1", "precision", "recall", "accuracy", "macro_f1", "rouge1", "rouge2", "rougeL",
)  # fmt: skip
_NOT_ENV_KWARGS = ("split", "render_mode")


@dataclass
class Run:
    """One finished run: its directory and its ``summary.json``."""

    path: Path
    summary: dict[str, Any]

    @property
    def seed(self) -> Any:
        return self.summary["seed"]


@dataclass
class Spec:
    """What must match for two runs to be comparable (see the module docstring)."""

    env_id: str
    env_kwargs: dict[str, Any]
    textgym_version: str
    eval_split: str
    letter: str = "A"
    note: str = ""
    num_runs: int = 0

    @property
    def key(self) -> str:
        return json.dumps(
            [self.env_id, self.env_kwargs, self.textgym_version, self.eval_split],
            sort_keys=True,
            default=str,
        )

    def describe(self) -> str:
        kwargs = ", ".join(f"{k}={v}" for k, v in sorted(self.env_kwargs.items()) if v is not None)
        return f"{self.env_id}({kwargs}), textgym {self.textgym_version}, {self.eval_split} split"


@dataclass
class Row:
    """One leaderboard row: the runs of one agent setting under one spec, over seeds."""

    spec: Spec
    agent: str
    policy: str | None
    hyperparameters: dict[str, Any]
    budget: int
    """The requested env steps (:func:`step_budget`)."""
    runs: list[Run] = field(default_factory=list)
    metric: Estimate | None = None
    mean_return: Estimate | None = None
    rank: int = 0
    variant: int = 1
    note: str = ""

    @property
    def label(self) -> str:
        return self.agent if self.variant == 1 else f"{self.agent} #{self.variant}"

    @property
    def is_baseline(self) -> bool:
        return self.agent in BASELINE_AGENTS

    @property
    def agent_key(self) -> str:
        return json.dumps(
            [self.agent, self.policy, self.hyperparameters, self.budget],
            sort_keys=True,
            default=str,
        )

    @property
    def seeds(self) -> list[Any]:
        return [r.seed for r in self.runs]

    @property
    def total_env_steps(self) -> int:
        """The env steps (supervised: labelled decisions) taken, mean over seeds."""
        return round(sum(int(r.summary["total_env_steps"]) for r in self.runs) / len(self.runs))

    @property
    def wall_time_s(self) -> float:
        return sum(float(r.summary["wall_time_s"]) for r in self.runs) / len(self.runs)

    @property
    def devices(self) -> list[str]:
        return sorted({str(r.summary["device"]) for r in self.runs})


@dataclass
class EnvTable:
    """All rows of one env id: its specs, its rows (spec, then rank order) and its metric."""

    env_id: str
    task: str
    metric_key: str
    metric_name: str
    specs: list[Spec]
    rows: list[Row]


@dataclass
class Leaderboard:
    tables: list[EnvTable]
    skipped: list[tuple[str, str]]
    num_runs: int


def _env_creator(env_id: str) -> Any:
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    import textgym  # noqa: F401  (registers the ids)

    try:
        spec = gym.spec(env_id)
    except gym.error.Error:
        return None, {}
    entry = spec.entry_point
    creator = load_env_creator(entry) if isinstance(entry, str) else entry
    return creator, dict(spec.kwargs or {})


def env_task(env_id: str, metrics: dict[str, Any]) -> str:
    """The env's task, from its class or, for an unregistered id, from its metrics."""
    creator, _ = _env_creator(env_id)
    task = getattr(creator, "task", None)
    if task in TASK_METRICS:
        return task
    if "rougeL" in metrics:
        return "summarization"
    return "ner" if "per_type" in metrics else "classification"


def canonical_env_kwargs(env_id: str, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The kwargs an env really ran with: constructor defaults, registered kwargs, the run's.

    ``split`` and ``render_mode`` are dropped (they do not change the task), and a
    ``dataset`` left to its default is named (``wnut16`` / ``bbc-news``).
    """
    creator, registered = _env_creator(env_id)
    defaults: dict[str, Any] = {}
    if creator is not None:
        try:
            params = inspect.signature(creator).parameters.values()
        except (TypeError, ValueError):
            params = []
        defaults = {
            p.name: p.default
            for p in params
            if p.default is not inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
    out = {**defaults, **registered, **env_kwargs}
    for key in _NOT_ENV_KWARGS:
        out.pop(key, None)
    task = getattr(creator, "task", None)
    if out.get("dataset") is None and out.get("data_files") is None and out.get("data_dir") is None:
        from textgym.corpora.loader import DEFAULT_DATASETS

        if task in DEFAULT_DATASETS:
            out["dataset"] = DEFAULT_DATASETS[task]
    return json.loads(json.dumps(out, sort_keys=True, default=str))


def load_runs(roots: list[str | os.PathLike]) -> tuple[list[Run], list[tuple[str, str]]]:
    """Every ``summary.json`` under ``roots``: the usable runs and ``(path, why not)``."""
    runs, skipped = [], []
    for root in roots:
        root = Path(root)
        paths = [root / SUMMARY] if (root / SUMMARY).exists() else sorted(root.rglob(SUMMARY))
        for path in paths:
            summary, why = read_summary(path)
            if summary is None:
                skipped.append((str(path.parent), why))
            else:
                runs.append(Run(path.parent, summary))
    return runs, skipped


def _differences(a: dict[str, Any], b: dict[str, Any]) -> str:
    def show(d: dict[str, Any], key: str) -> str:
        return repr(d[key]) if key in d else "unset"

    keys = sorted(k for k in set(a) | set(b) if k not in a or k not in b or a[k] != b[k])
    return ", ".join(f"{k}={show(a, k)} (vs {show(b, k)})" for k in keys)


def _spec_note(spec: Spec, reference: Spec) -> str:
    parts = []
    if spec.env_kwargs != reference.env_kwargs:
        parts.append("env kwargs differ: " + _differences(spec.env_kwargs, reference.env_kwargs))
    if spec.textgym_version != reference.textgym_version:
        parts.append(f"textgym {spec.textgym_version} (vs {reference.textgym_version})")
    if spec.eval_split != reference.eval_split:
        parts.append(f"scored on {spec.eval_split} (vs {reference.eval_split})")
    return f"not pooled with spec {reference.letter}: " + "; ".join(parts)


def _variant_note(row: Row, reference: Row) -> str:
    parts = []
    if row.policy != reference.policy:
        parts.append(f"policy={row.policy!r} (vs {reference.policy!r})")
    if row.hyperparameters != reference.hyperparameters:
        parts.append(_differences(row.hyperparameters, reference.hyperparameters))
    if row.budget != reference.budget:
        parts.append(f"budget {row.budget:,} env steps (vs {reference.budget:,})")
    return f"not pooled with {reference.label}: " + "; ".join(parts)


def step_budget(run: Run) -> int:
    """The env steps a run was asked for: ``timesteps`` of its summary, else (summaries
    written before it was recorded) ``n_timesteps`` of the bench's ``run.json`` beside it,
    else the steps it took. A baseline's are the steps it took (it has no budget)."""
    if run.summary["agent"] in BASELINE_AGENTS:
        return int(run.summary["total_env_steps"])
    budget = run.summary.get("timesteps")
    if budget is None:
        try:
            budget = json.loads((run.path / RUN_SPEC).read_text(encoding="utf-8"))["n_timesteps"]
        except (OSError, ValueError, KeyError, TypeError):
            budget = None
    if isinstance(budget, bool) or not isinstance(budget, int):
        budget = run.summary["total_env_steps"]
    return int(budget)


def build(
    roots: list[str | os.PathLike],
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Leaderboard:
    """Load the runs under ``roots``, group them (module docstring) and score each row."""
    runs, skipped = load_runs(roots)
    by_env: dict[str, dict[str, Row]] = {}
    specs: dict[str, dict[str, Spec]] = {}
    for run in runs:
        s = run.summary
        env_id = str(s["env_id"])
        why = impossible_scores(env_id, s["test_metrics"])
        if why is not None:
            skipped.append((str(run.path), why))
            continue
        spec = Spec(
            env_id,
            canonical_env_kwargs(env_id, dict(s["env_kwargs"] or {})),
            str((s.get("versions") or {}).get("textgym", "unknown")),
            str(s.get("eval_split", "test")),
        )
        spec = specs.setdefault(env_id, {}).setdefault(spec.key, spec)
        row = Row(
            spec,
            str(s["agent"]),
            s.get("policy"),
            dict(s.get("hyperparameters") or {}),
            step_budget(run),
        )
        row = by_env.setdefault(env_id, {}).setdefault(spec.key + row.agent_key, row)
        clash = next((r for r in row.runs if r.seed == run.seed), None)
        if clash is not None:
            skipped.append((str(run.path), f"same setting and seed as {clash.path}; counted once"))
            continue
        row.runs.append(run)
        spec.num_runs += 1

    tables = []
    for env_id in sorted(by_env):
        rows = list(by_env[env_id].values())
        task = env_task(env_id, rows[0].runs[0].summary["test_metrics"])
        metric_key, metric_name = TASK_METRICS[task]
        env_specs = sorted(specs[env_id].values(), key=lambda sp: (-sp.num_runs, sp.key))
        for i, sp in enumerate(env_specs):
            sp.letter = chr(ord("A") + i) if i < 26 else f"S{i + 1}"
            sp.note = "" if i == 0 else _spec_note(sp, env_specs[0])
        for row in rows:
            values = [_number(r.summary["test_metrics"].get(metric_key)) for r in row.runs]
            returns = [_number(r.summary["test_metrics"].get("mean_reward")) for r in row.runs]
            row.metric = _estimate(values, n_resamples, seed)
            row.mean_return = _estimate(returns, n_resamples, seed)
        ordered: list[Row] = []
        for sp in env_specs:
            mine = [r for r in rows if r.spec is sp]
            _name_variants(mine)
            mine.sort(key=lambda r: (-_score(r.metric, "mean"), -_score(r.metric, "iqm"), r.label))
            for rank, row in enumerate(mine, 1):
                row.rank = rank
                if sp.note:
                    row.note = "; ".join(x for x in (sp.note, row.note) if x)
            ordered += mine
        tables.append(EnvTable(env_id, task, metric_key, metric_name, env_specs, ordered))
    return Leaderboard(tables, skipped, sum(len(r.runs) for t in tables for r in t.rows))


def impossible_scores(env_id: str, metrics: Any) -> str | None:
    """Why a run's ``test_metrics`` cannot be true, or None when they can."""
    if not isinstance(metrics, dict):
        return f"test_metrics is {type(metrics).__name__}, not an object"
    key, name = TASK_METRICS[env_task(env_id, metrics)]
    if key not in metrics:
        return f"test_metrics has no {key} ({name}, the metric this env is ranked by)"
    for metric, value in metrics.items():
        if metric not in (*FRACTION_METRICS, "mean_reward") or (value is None and metric != key):
            continue  # None: not recorded
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"test_metrics.{metric} is {value!r}, not a number"
        if not math.isfinite(value):
            return f"test_metrics.{metric} is {value!r}"
        if metric != "mean_reward" and not 0.0 <= value <= 1.0:
            return f"test_metrics.{metric} is {value!r}, outside [0, 1]"
    return None


def _number(value: Any) -> float:
    """A metric as a float; NaN when a run did not record it (left out of the statistics)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return float("nan")
    return float(value)


def _estimate(values: list[float], n_resamples: int, seed: int) -> Estimate | None:
    finite = [v for v in values if v == v]
    return estimate(finite, n_resamples=n_resamples, seed=seed) if finite else None


def _score(value: Estimate | None, attr: str) -> float:
    return float("-inf") if value is None else getattr(value, attr)


def _name_variants(rows: list[Row]) -> None:
    """Number the settings of one agent under one spec (#1 has the most runs)."""
    by_agent: dict[str, list[Row]] = {}
    for row in rows:
        by_agent.setdefault(row.agent, []).append(row)
    for variants in by_agent.values():
        variants.sort(key=lambda r: (-len(r.runs), r.agent_key))
        for i, row in enumerate(variants, 1):
            row.variant = i
            if i > 1:
                row.note = _variant_note(row, variants[0])
