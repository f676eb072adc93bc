"""Reading landing files as they arrive: gzip or not, UTF-8 or GB18030, any line ending.

Compression and encoding are recognised from the bytes, never from the file name.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"


class LandingFileError(ValueError):
    """A landing file cannot be read at all. The message names the file and what to do."""


def read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when it is gzip (by its magic bytes)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LandingFileError(f"{path}: cannot be read ({exc.strerror}); check that it exists and is readable.") from None
    if raw[:2] == GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise LandingFileError(
                f"{path}: is gzip-compressed but damaged ({exc}); ask for the file again.") from None
    return raw


def decode(data: bytes, path: Path) -> tuple[str, str]:
    """Decode text as UTF-8 (BOM removed) or, failing that, GB18030. Returns (text, encoding)."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        try:
            return data.decode("gb18030"), "gb18030"
        except UnicodeDecodeError:
            line = data[: utf8_error.start].count(b"\n") + 1
            raise LandingFileError(
                f"{path}: line {line}: bytes are neither UTF-8 nor GB18030 (at byte {utf8_error.start}); "
                "re-export the file in UTF-8 or GB18030.") from None


def read_text(path: Path) -> tuple[str, str]:
    """Read a landing text file: returns (text with line endings as they were, encoding)."""
    return decode(read_bytes(path), Path(path))


def split_lines(text: str) -> list[str]:
    """Lines without their endings; \\r\\n, \\n and lone \\r all end a line. A final newline adds no line."""
    return text.splitlines()
