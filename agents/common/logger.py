"""Training logs with stable-baselines3 key names, to CSV and TensorBoard."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .io import atomic_write_bytes


class Logger:
    """Collects ``{key: value}`` rows (``rollout/ep_rew_mean``, ``train/policy_loss``...).

    The TensorBoard writer opens at the first :meth:`record`. When the logger holds rows
    by then (restored from a checkpoint on resume), it writes them to a fresh event file
    and deletes the directory's older event files: one log, with the steps a crashed run
    took after its last checkpoint (and that the resumed run redoes) gone.

    Args:
        log_dir: Where ``progress.csv`` and the TensorBoard event files go; None keeps
            the rows in memory only (``self.rows``).
        rows: Rows of an earlier run of the same training (resume).
    """

    def __init__(self, log_dir: str | Path | None = None, rows: list[dict] | None = None):
        self.rows: list[dict[str, float]] = list(rows or [])
        self.log_dir = None if log_dir is None else Path(log_dir)
        self._writer = None

    def _open_writer(self):
        from torch.utils.tensorboard import SummaryWriter

        older = sorted(self.log_dir.glob("events.out.tfevents.*"))
        self._writer = SummaryWriter(str(self.log_dir))
        if self.rows:
            for row in self.rows:
                self._add(row)
            self._writer.flush()
            for path in older:  # only now: the restored rows are safely in the new file
                path.unlink(missing_ok=True)
        return self._writer

    def _add(self, row: dict[str, float]) -> None:
        step = int(row["time/total_timesteps"])
        for key, value in row.items():
            self._writer.add_scalar(key, value, step)

    def record(self, row: dict[str, float], step: int) -> None:
        row = {"time/total_timesteps": step, **row}
        if self.log_dir is not None and self._writer is None:
            self._open_writer()
        self.rows.append(row)
        if self._writer is not None:
            self._add(row)
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
            self._writer = None
