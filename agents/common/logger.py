"""Training logs with stable-baselines3 key names, to CSV and TensorBoard."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .io import atomic_write_bytes


class Logger:
    """Collects ``{key: value}`` rows (``rollout/ep_rew_mean``, ``train/policy_loss``...).

    Args:
        log_dir: Where ``progress.csv`` and the TensorBoard event files go; None keeps
            the rows in memory only (``self.rows``).
        rows: Rows of an earlier run of the same training (resume).
    """

    def __init__(self, log_dir: str | Path | None = None, rows: list[dict] | None = None):
        self.rows: list[dict[str, float]] = list(rows or [])
        self.log_dir = None if log_dir is None else Path(log_dir)
        self._writer = None
        if self.log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.log_dir))

    def record(self, row: dict[str, float], step: int) -> None:
        row = {"time/total_timesteps": step, **row}
        self.rows.append(row)
        if self._writer is not None:
            for key, value in row.items():
                self._writer.add_scalar(key, value, step)
            self._writer.flush()
            self._write_csv()

    def _write_csv(self) -> None:
        # Keys appear over time (eval/* only at evaluations): the whole file is rewritten
        # with the union of keys, atomically, so it is always a valid CSV.
        keys = sorted({k for row in self.rows for k in row})
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_bytes(self.log_dir / "progress.csv", out.getvalue().encode())

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
