"""Reading landing files as they arrive: gzip or not, UTF-8, GB18030 or UTF-16, any line ending.

Compression and encoding are recognised from the bytes, never from the file name: a UTF-8 or
UTF-16 (little- or big-endian) byte-order mark names its encoding; without one the text is
UTF-8 if it decodes as UTF-8, else GB18030. Decompression streams and stops at a stated size,
so a gzip that inflates without end costs no more than that size (assets/reading.py reads
text line by line within bounds on top of this).
"""

from __future__ import annotations

import codecs
import zlib
from collections.abc import Iterator
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
# Byte-order mark → the encoding it names (UTF-16 is what Excel's "Unicode text" export writes).
BOMS = ((UTF8_BOM, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
CHUNK = 1 << 20                  # bytes read (and inflated) at a time
MAX_FILE_BYTES = 4 << 30         # default size limit of a landing file's content (decompressed)


class LandingFileError(ValueError):
    """A landing file cannot be read at all. The message names the file and what to do."""


def bom_of(head: bytes) -> tuple[str | None, int]:
    """The encoding a byte-order mark at the start of ``head`` names, and the mark's length."""
    for mark, encoding in BOMS:
        if head.startswith(mark):
            return encoding, len(mark)
    return None, 0


def _too_big(path: Path, limit: int) -> LandingFileError:
    return LandingFileError(
        f"{path}: holds more than {limit:,} bytes (decompressed), the limit of a landing file "
        "(landing_limits.max_file_bytes in the library config); a gzip that inflates this far is damaged or not "
        "an export. Ask for the file again, split into days, or raise the limit.")


def _gunzip(raw, path: Path, limit: int) -> Iterator[bytes]:
    """Inflate a gzip stream (members one after the other), at most ``CHUNK`` bytes per piece."""
    inflater, total, begun = zlib.decompressobj(31), 0, False
    while block := raw.read(CHUNK // 4):
        data = block
        while data:
            try:
                piece = inflater.decompress(data, CHUNK)
            except zlib.error as exc:
                raise LandingFileError(f"{path}: is gzip-compressed but damaged ({exc}); ask for the file again.") from None
            begun = True
            total += len(piece)
            if total > limit:
                raise _too_big(path, limit)
            if piece:
                yield piece
            if inflater.eof:
                rest = inflater.unused_data
                if rest.strip(b"\x00") and not rest.startswith(GZIP_MAGIC[:len(rest)]):
                    raise LandingFileError(f"{path}: is gzip-compressed but damaged (bytes after the end of the "
                                           "compressed data); ask for the file again.")
                inflater, begun, data = zlib.decompressobj(31), False, rest.strip(b"\x00") and rest
            else:
                data = inflater.unconsumed_tail
    if begun and not inflater.eof:
        raise LandingFileError(f"{path}: is gzip-compressed but damaged (it ends before the end of the compressed "
                               "data: the file was cut off); ask for the file again.")


def iter_bytes(path: Path, limit: int = MAX_FILE_BYTES) -> Iterator[bytes]:
    """The file's content in pieces, inflated when it is gzip (by its magic bytes), at most ``limit`` bytes."""
    path = Path(path)
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise LandingFileError(f"{path}: cannot be read ({exc.strerror}); check that it exists and is readable.") from None
    with raw:
        if raw.read(2) == GZIP_MAGIC:
            raw.seek(0)
            yield from _gunzip(raw, path, limit)
            return
        raw.seek(0)
        total = 0
        while block := raw.read(CHUNK):
            total += len(block)
            if total > limit:
                raise _too_big(path, limit)
            yield block


def read_bytes(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The file's content, decompressed when it is gzip (by its magic bytes)."""
    content = bytearray()
    for piece in iter_bytes(path, limit):
        content += piece
    return bytes(content)


def read_head(path: Path, size: int = 4096) -> bytes:
    """The first ``size`` bytes of the file's content (decompressed), without reading the rest."""
    head = bytearray()
    for piece in iter_bytes(path):
        head += piece
        if len(head) >= size:
            break
    return bytes(head[:size])


def decode(data: bytes, path: Path) -> tuple[str, str]:
    """Decode text by its byte-order mark (removed), else as UTF-8 or, failing that, GB18030.
    Returns (text, encoding)."""
    encoding, skip = bom_of(data[:4])
    if encoding is not None and encoding != "utf-8":
        try:
            return data[skip:].decode(encoding), encoding
        except UnicodeDecodeError as exc:
            line = data[:exc.start].decode(encoding, errors="replace").count("\n") + 1
            raise LandingFileError(
                f"{path}: line {line}: starts with a {encoding.upper()} byte-order mark but is not {encoding.upper()} "
                f"(at byte {exc.start}); save it again as Unicode text or UTF-8.") from None
    data = data[skip:]
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


class ByteStream:
    """A landing file's content (``iter_bytes``) as a file object read forward once, holding only what
    has been read ahead: a reader that has read too far puts the bytes back (``unread``)."""

    def __init__(self, path: Path, limit: int = MAX_FILE_BYTES):
        self.pieces = iter_bytes(path, limit)
        self.buffer = bytearray()
        self.offset = 0                     # bytes handed out so far

    def _fill(self, size: int) -> None:
        while len(self.buffer) < size and (piece := next(self.pieces, None)) is not None:
            self.buffer += piece

    def read(self, size: int = -1) -> bytes:
        self._fill(size if size >= 0 else MAX_FILE_BYTES)
        out = bytes(self.buffer[:size] if size >= 0 else self.buffer)
        del self.buffer[:len(out)]
        self.offset += len(out)
        return out

    def unread(self, data: bytes) -> None:
        self.buffer[:0] = data
        self.offset -= len(data)

    def read_through(self, mark: bytes, keep: int) -> tuple[bytes, int, bool]:
        """Skip through the next ``mark`` (or to the end): the first ``keep`` bytes skipped, how many
        were skipped, and whether they were all white space or padding (NUL, SUB)."""
        kept, skipped, blank = bytearray(), 0, True
        while True:
            self._fill(1)
            if not self.buffer:
                return bytes(kept), skipped, blank
            end = self.buffer.find(mark)
            part = self.buffer[:len(self.buffer) if end < 0 else end + len(mark)]
            kept += part[:max(0, keep - len(kept))]
            blank = blank and not part.strip(b"\r\n \x00\x1a")
            skipped += len(part)
            self.offset += len(part)
            del self.buffer[:len(part)]
            if end >= 0:
                return bytes(kept), skipped, blank
