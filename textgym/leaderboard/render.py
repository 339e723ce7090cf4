"""Leaderboard output: ``leaderboard.md``, ``leaderboard.json``, ``leaderboard.html`` and
PNG learning curves (``curves/<env id>[-<spec>].png``).

The HTML page is self-contained: inline CSS, a small inline script that sorts a table
when a header is clicked (or on load, from a URL hash ``#sort=KEY`` or
``#sort=KEY:desc``, e.g. ``#sort=metric:desc``; keys: ``rank``, ``agent``, ``policy``,
``metric``, ``iqm``, ``return``, ``seeds``, ``steps``, ``wall``, ``device``, ``note``),
and the learning curves as base64 PNGs.
"""

from __future__ import annotations

import base64
import html
import io
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from textgym.leaderboard.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from textgym.leaderboard.stats import Estimate
from textgym.leaderboard.table import EnvTable, Leaderboard, Row, Spec

CI_TEXT = "mean over seeds [95% percentile-bootstrap interval]"


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _with_ci(est: Estimate | None, digits: int = 3) -> str:
    if est is None:
        return "–"
    return f"{est.mean:.{digits}f} [{est.ci_low:.{digits}f}, {est.ci_high:.{digits}f}]"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def _steps(row: Row) -> str:
    if row.agent == "supervised" and row.total_env_steps:
        return f"{row.total_env_steps:,} labelled"
    return f"{row.total_env_steps:,}"


def curve_name(table: EnvTable, spec: Spec) -> str:
    suffix = "" if spec is table.specs[0] else f"-{spec.letter}"
    return f"curves/{table.env_id}{suffix}.png"


# ----- learning curves ------------------------------------------------------------------


def _curve(run_summary: dict, key: str) -> tuple[list[float], list[float]]:
    points = [p for p in run_summary.get("validation_curve") or [] if key in p and "timesteps" in p]
    return [float(p["timesteps"]) for p in points], [float(p[key]) for p in points]


def _same_curves(rows: list[Row], a: str, b: str) -> bool:
    """Whether metric ``a`` and ``b`` trace the same curve in every run (classification's
    accuracy is its mean return: the reward is 1 for the right label; a summary's final
    ROUGE-L reward is its ROUGE-L, summed in float32: equal to 1e-6)."""
    pairs = [(_curve(run.summary, a), _curve(run.summary, b)) for row in rows for run in row.runs]
    pairs = [(x, y) for x, y in pairs if x[0] or y[0]]
    return bool(pairs) and all(
        x[0] == y[0] and np.allclose(x[1], y[1], rtol=0, atol=1e-6) for x, y in pairs
    )


def _over_seeds(curves: list[tuple[list[float], list[float]]]) -> tuple[list[float], ...]:
    """``(steps, mean, low, high)`` of seeds' curves, point by point in evaluation order.

    The seeds of a row share the evaluation frequency, but an evaluation comes after the
    first whole rollout past each multiple of it, so their step counts differ a little
    (whole episodes of group rollouts: 96,048 against 96,012); the k-th points of the
    seeds are averaged, at the mean of their steps. A seed with fewer points counts
    where it has them.
    """
    steps, mean, low, high = [], [], [], []
    for k in range(max(len(xs) for xs, _ in curves)):
        points = [(xs[k], ys[k]) for xs, ys in curves if k < len(xs)]
        ys = [y for _, y in points]
        steps.append(float(np.mean([x for x, _ in points])))
        mean.append(float(np.mean(ys)))
        low.append(min(ys))
        high.append(max(ys))
    return steps, mean, low, high


def _fitted_limits(values: list[float]) -> tuple[float, float] | None:
    """y-limits around ``values`` with a 5% margin (None when there are none)."""
    if not values:
        return None
    low, high = min(values), max(values)
    margin = 0.05 * (high - low) if high > low else max(abs(high) * 0.05, 0.01)
    return low - margin, high + margin


def plot_curves(table: EnvTable, spec: Spec) -> bytes | None:
    """PNG of :func:`curves_figure` (None when it has no figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = curves_figure(table, spec)
    if fig is None:
        return None
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def curves_figure(table: EnvTable, spec: Spec):
    """Matplotlib figure of the validation metric (and the mean return, where it differs)
    against env steps.

    None when no RL agent of the spec recorded validation points.

    RL agents: mean over seeds with a min-max band, from their evaluation at step 0 (the
    untrained policy). Baselines: a dashed line at their final validation value (they do
    not learn from env steps). The y-axis is fitted to the RL agents' curves and the
    baselines that fall near them: a baseline far below (random's 0.001 entity-F1) is
    named in the legend with its value rather than stretching the axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in table.rows if r.spec is spec]
    learners = [row for row in rows if not row.is_baseline]
    if not any(_curve(run.summary, table.metric_key)[0] for row in learners for run in row.runs):
        return None  # baselines alone are flat lines: nothing learns here
    panels = [(table.metric_key, f"validation {table.metric_name}")]
    if not _same_curves(rows, table.metric_key, "mean_reward"):
        panels.append(("mean_reward", "validation mean return"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (key, title) in zip(axes[0], panels, strict=True):
        learned: list[float] = []
        levels: list[tuple[float, str, str]] = []
        for i, row in enumerate(rows):
            color = colors[i % len(colors)]
            curves = [_curve(run.summary, key) for run in row.runs]
            curves = [c for c in curves if c[0]]
            if not curves:
                continue
            if row.is_baseline:
                levels.append((float(np.mean([ys[-1] for _, ys in curves])), row.label, color))
                continue
            steps, mean, low, high = _over_seeds(curves)
            learned += low + high
            ax.plot(steps, mean, color=color, marker="o", markersize=3, label=row.label)
            ax.fill_between(steps, low, high, color=color, alpha=0.15, linewidth=0)
        limits = _fitted_limits(learned)
        span = (limits[1] - limits[0]) if limits else 0.0
        for level, label, color in levels:
            near = limits is None or limits[0] - span <= level <= limits[1] + span
            if near:
                ax.axhline(level, color=color, linestyle="--", linewidth=1.2, label=label)
                limits = _fitted_limits([*learned, level])
            else:  # off the fitted axis: named with its value, not drawn
                ax.plot(
                    [], [], color=color, linestyle="--", label=f"{label} ({level:.3g}, off axis)"
                )
        if limits is not None:
            ax.set_ylim(*limits)
        ax.set_title(title)
        ax.set_xlabel("env steps")
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle(f"{table.env_id} (spec {spec.letter}): mean over seeds, band = min–max")
    fig.tight_layout()
    return fig


# ----- JSON -----------------------------------------------------------------------------


def _est(est: Estimate | None) -> dict | None:
    return None if est is None else est.as_dict()


def to_json(board: Leaderboard, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        **meta,
        "statistics": CI_TEXT + "; IQM = interquartile mean over seeds",
        "num_runs": board.num_runs,
        "skipped": [{"path": p, "reason": why} for p, why in board.skipped],
        "envs": [
            {
                "env_id": t.env_id,
                "task": t.task,
                "metric": t.metric_key,
                "metric_name": t.metric_name,
                "specs": [
                    {
                        "letter": s.letter,
                        "env_kwargs": s.env_kwargs,
                        "textgym_version": s.textgym_version,
                        "eval_split": s.eval_split,
                        "num_runs": s.num_runs,
                        "note": s.note,
                    }
                    for s in t.specs
                ],
                "rows": [
                    {
                        "spec": r.spec.letter,
                        "rank": r.rank,
                        "agent": r.label,
                        "algorithm": r.agent,
                        "baseline": r.is_baseline,
                        "policy": r.policy,
                        "hyperparameters": r.hyperparameters,
                        "metric": _est(r.metric),
                        "mean_return": _est(r.mean_return),
                        "seeds": r.seeds,
                        "values": [r2.summary["test_metrics"].get(t.metric_key) for r2 in r.runs],
                        "total_env_steps": r.total_env_steps,
                        "wall_time_s": r.wall_time_s,
                        "devices": r.devices,
                        "note": r.note,
                        "runs": [str(run.path) for run in r.runs],
                    }
                    for r in t.rows
                ],
            }
            for t in board.tables
        ],
    }


# ----- Markdown -------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _spec_line(spec: Spec) -> str:
    line = f"spec {spec.letter}: `{spec.describe()}` ({spec.num_runs} runs)"
    return line + (f" — {spec.note}" if spec.note else "")


def to_markdown(
    board: Leaderboard, meta: dict[str, Any], curves: dict[tuple[str, str], str]
) -> str:
    lines = [f"# {meta['title']}", ""]
    lines.append(
        f"Generated {meta['generated_at']} from {board.num_runs} runs by `{meta['command']}`."
    )
    if meta.get("bench_command"):
        lines.append(f"The runs were made by `{meta['bench_command']}`.")
    if meta.get("curves_note"):
        lines.append(meta["curves_note"] + ".")
    lines += [
        "",
        f"Scores are on each run's evaluation split: {CI_TEXT}; IQM is the interquartile "
        "mean over seeds. Rows are ranked within their spec; runs are pooled only when env "
        "id, env kwargs (defaults filled in), textgym version, split, agent, encoder, "
        "hyperparameters and step budget all agree. Wall time is the mean time spent training "
        "(evaluation excluded). Shaded rows in the HTML are baselines; supervised's step "
        "count is the labelled decisions it trained on.",
        "",
    ]
    for table in board.tables:
        lines += [f"## {table.env_id} — {table.metric_name}", ""]
        lines += [_spec_line(s) + "  " for s in table.specs] + [""]
        multi = len(table.specs) > 1
        header = (
            ["#"]
            + (["spec"] if multi else [])
            + [
                "agent",
                "policy",
                f"{table.metric_name} (mean [95% CI])",
                "IQM",
                "mean return [95% CI]",
                "seeds",
                "env steps",
                "wall time",
                "device",
                "note",
            ]
        )
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        for r in table.rows:
            cells = (
                [str(r.rank)]
                + ([r.spec.letter] if multi else [])
                + [
                    r.label,
                    r.policy or "–",
                    _with_ci(r.metric),
                    _num(r.metric.iqm if r.metric else None),
                    _with_ci(r.mean_return),
                    str(len(r.runs)),
                    _steps(r),
                    _duration(r.wall_time_s),
                    ", ".join(r.devices),
                    r.note,
                ]
            )
            lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
        lines.append("")
        for spec in table.specs:
            if (table.env_id, spec.letter) in curves:
                name = curves[(table.env_id, spec.letter)]
                lines += [f"![{table.env_id} spec {spec.letter} learning curves]({name})", ""]
    if board.skipped:
        lines += ["## Runs not included", ""]
        lines += [f"- `{p}`: {why}" for p, why in board.skipped]
        lines.append("")
    return "\n".join(lines)


# ----- HTML -----------------------------------------------------------------------------

_COLUMNS = (
    ("rank", "#", "num"),
    ("spec", "spec", "text"),
    ("agent", "agent", "text"),
    ("policy", "policy", "text"),
    ("metric", None, "num"),
    ("iqm", "IQM", "num"),
    ("return", "mean return", "num"),
    ("seeds", "seeds", "num"),
    ("steps", "env steps", "num"),
    ("wall", "wall time", "num"),
    ("device", "device", "text"),
    ("note", "note", "text"),
)


def _td(text: str, value: Any = None, cls: str = "") -> str:
    attrs = "" if value is None else f' data-value="{html.escape(str(value))}"'
    attrs += f' class="{cls}"' if cls else ""
    return f"<td{attrs}>{text}</td>"


def _est_html(est: Estimate | None) -> str:
    if est is None:
        return "–"
    return f'{est.mean:.3f} <span class="ci">[{est.ci_low:.3f}, {est.ci_high:.3f}]</span>'


def _html_table(table: EnvTable) -> str:
    multi = len(table.specs) > 1
    columns = [c for c in _COLUMNS if multi or c[0] != "spec"]
    head = "".join(
        f'<th data-key="{key}" data-type="{kind}"><button type="button">'
        f"{html.escape(label or table.metric_name)}</button></th>"
        for key, label, kind in columns
    )
    body = []
    for r in table.rows:
        cells = {
            "rank": _td(str(r.rank), r.rank, "num"),
            "spec": _td(r.spec.letter),
            "agent": _td(html.escape(r.label)),
            "policy": _td(html.escape(r.policy or "–")),
            "metric": _td(_est_html(r.metric), r.metric.mean if r.metric else "", "num"),
            "iqm": _td(
                _num(r.metric.iqm if r.metric else None), r.metric.iqm if r.metric else "", "num"
            ),
            "return": _td(
                _est_html(r.mean_return), r.mean_return.mean if r.mean_return else "", "num"
            ),
            "seeds": _td(str(len(r.runs)), len(r.runs), "num"),
            "steps": _td(html.escape(_steps(r)), r.total_env_steps, "num"),
            "wall": _td(_duration(r.wall_time_s), f"{r.wall_time_s:.3f}", "num"),
            "device": _td(html.escape(", ".join(r.devices))),
            "note": _td(html.escape(r.note), cls="note"),
        }
        cls = ' class="baseline"' if r.is_baseline else ""
        body.append(f"<tr{cls}>" + "".join(cells[key] for key, _, _ in columns) + "</tr>")
    return (
        f'<table class="lb" id="table-{html.escape(table.env_id)}" '
        f'data-env="{html.escape(table.env_id)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def to_html(board: Leaderboard, meta: dict[str, Any], pngs: dict[tuple[str, str], bytes]) -> str:
    parts = [f"<h1>{html.escape(meta['title'])}</h1>"]
    parts.append(
        f'<p class="meta">Generated {html.escape(meta["generated_at"])} from {board.num_runs} '
        f"runs by <code>{html.escape(meta['command'])}</code>."
        + (
            f" Runs made by <code>{html.escape(meta['bench_command'])}</code>."
            if meta.get("bench_command")
            else ""
        )
        + f" Scores: {html.escape(CI_TEXT)}; IQM: interquartile mean over seeds. Ranked within "
        "each spec; wall time is the mean training time; shaded rows are baselines. Click a "
        "header to sort.</p>"
    )
    if meta.get("curves_note"):
        parts.append(f'<p class="meta">{html.escape(meta["curves_note"])}.</p>')
    for table in board.tables:
        parts.append(f"<h2>{html.escape(table.env_id)} — {html.escape(table.metric_name)}</h2>")
        for spec in table.specs:
            note = f" — {html.escape(spec.note)}" if spec.note else ""
            parts.append(
                f'<p class="spec">spec {spec.letter}: <code>{html.escape(spec.describe())}</code> '
                f"({spec.num_runs} runs){note}</p>"
            )
        parts.append(_html_table(table))
        for spec in table.specs:
            png = pngs.get((table.env_id, spec.letter))
            if png is not None:
                data = base64.b64encode(png).decode("ascii")
                parts.append(
                    f'<img class="curves" alt="{html.escape(table.env_id)} spec {spec.letter} '
                    f'learning curves" src="data:image/png;base64,{data}">'
                )
    if board.skipped:
        items = "".join(
            f"<li><code>{html.escape(p)}</code>: {html.escape(why)}</li>"
            for p, why in board.skipped
        )
        parts.append(f"<h2>Runs not included</h2><ul>{items}</ul>")
    template = resources.files("textgym.leaderboard").joinpath("template.html").read_text("utf-8")
    return template.replace("__TITLE__", html.escape(meta["title"])).replace(
        "__BODY__", "\n".join(parts)
    )


# ----- everything -----------------------------------------------------------------------


def write_leaderboard(
    board: Leaderboard,
    out: str | Path,
    command: str,
    title: str = "textgym leaderboard",
    bench_command: str | None = None,
) -> dict[str, Path]:
    """Write the Markdown, JSON and HTML pages and the PNG curves into ``out``."""
    out = Path(out)
    meta = {
        "title": title,
        "generated_at": time.strftime("%Y-%m-%d %H:%M %Z"),
        "command": command,
        "bench_command": bench_command,
    }
    pngs: dict[tuple[str, str], bytes] = {}
    curves: dict[tuple[str, str], str] = {}
    written: dict[str, Path] = {}
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        meta["curves_note"] = (
            "no learning curves: matplotlib is not installed (pip install textgym[plots])"
        )
    for table in board.tables if "curves_note" not in meta else []:
        for spec in table.specs:
            png = plot_curves(table, spec)
            if png is None:
                continue
            name = curve_name(table, spec)
            atomic_write_bytes(out / name, png)
            pngs[(table.env_id, spec.letter)] = png
            curves[(table.env_id, spec.letter)] = name
            written[name] = out / name
    atomic_write_text(out / "leaderboard.md", to_markdown(board, meta, curves))
    atomic_write_json(out / "leaderboard.json", to_json(board, meta))
    atomic_write_text(out / "leaderboard.html", to_html(board, meta, pngs))
    for name in ("leaderboard.md", "leaderboard.json", "leaderboard.html"):
        written[name] = out / name
    return written
