"""Reading text files whatever their encoding and line ends.

Every text loader decodes bytes the same way: UTF-16 or UTF-32 when the file starts with
their byte-order mark (as Windows Notepad's "Unicode" saves), else UTF-8 (a byte-order
mark is dropped). A file that is not valid UTF-8 and holds no valid UTF-8 multi-byte
character either is read as Windows-1252 (the BBC corpus has one such file), then Latin-1,
which accepts any byte, for the few bytes cp1252 leaves undefined.

A file that *is* UTF-8 apart from a few bytes (more valid multi-byte characters than
invalid bytes) is not switched to cp1252 as a whole, which would garble every non-ASCII
character in it: it is a :class:`DataError` naming the line and byte offset of the first
bad byte. ``encoding=`` (any Python codec name) reads a file in that encoding, strictly.

Lines end at LF, CRLF or a lone CR (old Mac files), as editors count them.
"""

from __future__ import annotations

import codecs
import io
import os
import re

from textgym.errors import DataError, TextgymError

# UTF-32 first: its little-endian mark begins with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_LINE_END = re.compile(r"\r\n|\r|\n")


# A valid UTF-8 character of two to four bytes (no overlongs, no surrogates).
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]"
    rb"|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


def check_encoding(encoding: str | None) -> str | None:
    """Return ``encoding`` if Python knows the codec (or it is None), else raise."""
    if encoding is None:
        return None
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise TextgymError(
            f"unknown encoding {encoding!r}; pass a Python codec name such as 'utf-8', "
            "'cp1252', 'latin-1' or 'shift_jis', or None to detect it"
        ) from None
    return encoding


def _bad_byte(
    data: bytes, err: UnicodeDecodeError, encoding: str, path: str | None, hint: str = ""
) -> DataError:
    """A DataError naming the line and byte offset where ``data`` stops decoding."""
    before = data[: err.start].decode(encoding, "replace")
    line = len(split_lines(before))
    bad = data[err.start : min(err.end, err.start + 4)]
    shown = f"byte 0x{bad.hex()}" if len(bad) == 1 else f"bytes {bad!r}"
    return DataError(
        f"{shown} at byte offset {err.start} is not valid {encoding} ({err.reason}){hint}",
        path,
        line,
    )


def decode(data: bytes, encoding: str | None = None, path: str | None = None) -> str:
    """Decode file bytes (see the module docstring).

    Args:
        data: The file's bytes.
        encoding: None to detect (BOM, UTF-8, cp1252, Latin-1); a codec name to decode
            strictly in it (a UTF-8 BOM is dropped for UTF-8).
        path: The file, for error messages.

    Raises:
        DataError: ``encoding`` is given and the bytes are not in it, or the file is UTF-8
            with a few invalid bytes; the message names the line and the byte offset.
    """
    if encoding is not None:
        if codecs.lookup(encoding).name == "utf-8":
            encoding = "utf-8-sig"
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as err:
            raise _bad_byte(data, err, encoding, path) from None
    for bom, detected in _BOMS:
        if data.startswith(bom):
            if bom == codecs.BOM_UTF32_LE:
                # also UTF-16's little-endian mark before a U+0000: whichever decodes
                for codec in ("utf-32", "utf-16"):
                    try:
                        return data.decode(codec)
                    except UnicodeDecodeError:
                        pass
            # The mark is strong evidence: a cut last character becomes U+FFFD.
            return data.decode(detected, "replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        first = err
    valid = len(_UTF8_MULTIBYTE.findall(data))
    if valid:
        # U+FFFD marks each bad sequence, less the U+FFFD characters the file really holds
        invalid = data.decode("utf-8", "replace").count("\ufffd") - data.count(b"\xef\xbf\xbd")
        if valid >= invalid:
            hint = (
                f"; the rest of the file is UTF-8 ({valid} multi-byte characters, {invalid} "
                f"bad byte sequence{'s' if invalid != 1 else ''}), so it is not read as "
                "cp1252: fix the bytes, or pass encoding= with the file's real encoding "
                "(encoding='cp1252' or 'latin-1' reads all of it in that codec)"
            )
            raise _bad_byte(data, first, "utf-8", path, hint)
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_text(path: str | os.PathLike, encoding: str | None = None) -> str:
    """Read and decode a whole file, turning OS and decoding errors into :class:`DataError`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataError("no such file", path) from None
    except IsADirectoryError:
        raise DataError("is a directory, expected a file", path) from None
    except OSError as e:
        raise DataError(f"cannot read file: {e.strerror or e}", path) from None
    return decode(data, encoding, os.fspath(path))


def open_text(
    path: str | os.PathLike, encoding: str | None = None, newline: str | None = None
) -> tuple[io.BufferedReader, io.TextIOWrapper]:
    """A file opened to be read one line at a time, decoded as :func:`decode` would.

    Returns the binary file (its ``tell()`` is the progress in bytes) and the text reader
    over it. Detection is partial here: a UTF-16/32 byte-order mark, else UTF-8 (strict)
    or ``encoding``. A ``UnicodeDecodeError`` while reading means the file needs
    :func:`read_text`, which decides between an error naming the line and cp1252.

    Args:
        newline: None reads LF, CRLF and CR as line ends (lines end in "\\n"); "" keeps
            them as they are (what the ``csv`` module wants).

    Raises:
        DataError: The file cannot be opened.
    """
    try:
        raw = open(path, "rb")  # noqa: SIM115  (returned to the caller, who closes it)
    except FileNotFoundError:
        raise DataError("no such file", path) from None
    except IsADirectoryError:
        raise DataError("is a directory, expected a file", path) from None
    except OSError as e:
        raise DataError(f"cannot read file: {e.strerror or e}", path) from None
    errors = "strict"
    if encoding is not None:
        if codecs.lookup(encoding).name == "utf-8":
            encoding = "utf-8-sig"
    else:
        head = raw.peek(4)[:4]
        encoding = "utf-8-sig"
        for bom, detected in _BOMS:
            if head.startswith(bom):
                encoding, errors = detected, "replace"
                break
    return raw, io.TextIOWrapper(raw, encoding=encoding, errors=errors, newline=newline)


def split_lines(text: str) -> list[str]:
    """The lines of ``text``, split at LF, CRLF and lone CR (line ``n`` is item ``n - 1``)."""
    return _LINE_END.split(text)
