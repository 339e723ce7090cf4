"""Reading text files whatever their encoding and line ends.

Every text loader decodes bytes the same way: UTF-16 or UTF-32 when the file starts with
their byte-order mark (as Windows Notepad's "Unicode" saves), else UTF-8 (a byte-order
mark is dropped), then Windows-1252 when the bytes are not valid UTF-8 (the BBC corpus has
one such file), then Latin-1, which accepts any byte, for the few bytes cp1252 leaves
undefined. A file is never rejected for its encoding.

Lines end at LF, CRLF or a lone CR (old Mac files), as editors count them.
"""

from __future__ import annotations

import codecs
import os
import re

from textgym.errors import DataError

# UTF-32 first: its little-endian mark begins with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_LINE_END = re.compile(r"\r\n|\r|\n")


def decode(data: bytes) -> str:
    """Decode file bytes: UTF-16/32 by BOM, else UTF-8 (BOM dropped), cp1252, Latin-1."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            # The mark is strong evidence: a cut last character becomes U+FFFD.
            return data.decode(encoding, "replace")
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


def split_lines(text: str) -> list[str]:
    """The lines of ``text``, split at LF, CRLF and lone CR (line ``n`` is item ``n - 1``)."""
    return _LINE_END.split(text)
