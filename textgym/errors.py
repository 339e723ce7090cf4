"""Exceptions raised by textgym.

Every error a user can cause (a bad file, an unknown dataset, an action outside the
space) is a :class:`TextgymError`, which is also a :class:`ValueError`, so callers that
already catch ``ValueError`` keep working.
"""

from __future__ import annotations

import os


class TextgymError(ValueError):
    """Base class for errors caused by user input (data, kwargs, actions)."""


class DataError(TextgymError):
    """A dataset could not be read: names the file (and line, when known) and the problem.

    Args:
        message: What is wrong, in words a user can act on.
        path: The file or directory concerned.
        line: 1-based line number inside ``path``, when the problem is on one line.
    """

    def __init__(
        self, message: str, path: str | os.PathLike | None = None, line: int | None = None
    ):
        self.path = None if path is None else os.fspath(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}, line {line}"
            where += ": "
        super().__init__(where + message)
