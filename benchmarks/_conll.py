"""CoNLL-2003 from ``../shared/data`` as TextNER-v0 env kwargs, for the benchmark scripts.

A quick run may cut the validation or test split to its first sentences: the cut split is
written to ``workdir`` as a CoNLL file of its own and passed through ``data_files``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "conll2003"
FILES = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}


def conll_kwargs(workdir: Path, *, validation: int = 0, test: int = 0) -> dict[str, Any]:
    """Env kwargs for CoNLL-2003, with ``validation`` / ``test`` cut to their first N
    sentences (0: the whole split)."""
    if not (DATA_DIR / "train.txt").exists():
        raise SystemExit(f"CoNLL-2003 not found at {DATA_DIR}")
    kwargs: dict[str, Any] = {"dataset": "conll", "max_tokens": 128}
    cuts = {"validation": validation, "test": test}
    if not any(cuts.values()):
        return kwargs | {"data_dir": str(DATA_DIR)}
    files = {split: str(DATA_DIR / name) for split, name in FILES.items()}
    for split, n in cuts.items():
        if n:
            blocks = (DATA_DIR / FILES[split]).read_text().split("\n\n")
            kept = [b for b in blocks if b.strip() and "-DOCSTART-" not in b][:n]
            files[split] = str(workdir / f"{split}_first{n}.txt")
            Path(files[split]).write_text("\n\n".join(kept) + "\n")
    return kwargs | {"data_files": files}
