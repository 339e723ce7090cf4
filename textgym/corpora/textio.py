"""Reading text files whatever their encoding.

Every text loader decodes bytes the same way: UTF-8 (a byte-order mark is dropped), then
Windows-1252 when the bytes are not valid UTF-8 (the BBC corpus has one such file), then
Latin-1, which accepts any byte, for the few bytes cp1252 leaves undefined. A file is never
rejected for its encoding.
"""

from __future__ import annotations

import os

from textgym.errors import DataError


def decode(data: bytes) -> str:
    """Decode file bytes: UTF-8 (BOM dropped), else cp1252, else Latin-1."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_text(path: str | os.PathLike) -> str:
    """Read and decode a whole file, turning OS errors into :class:`DataError`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataError("no such file", path) from None
    except IsADirectoryError:
        raise DataError("is a directory, expected a file", path) from None
    except OSError as e:
        raise DataError(f"cannot read file: {e.strerror or e}", path) from None
    return decode(data)
