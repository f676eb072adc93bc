"""Secret keys kept outside the lake: one 0600 file each under the home folder's ``secrets/``.

A key file holds lines ``VERSION:HEXKEY``; the last line is the key in use, so a key can be
rotated by appending a line. A missing file is created on first use with a fresh random key.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class KeyFileError(RuntimeError):
    """A key file cannot be read; the message names it and the form expected."""


def create_key_file(path: Path) -> None:
    """Write a fresh key to ``path`` unless it exists, readable by its owner only.

    Written whole under another name, then linked into place: a run killed here leaves no empty
    key file, and of two runs creating it at once the first one's key wins.
    """
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    tmp = path.parent / f".key-{os.getpid()}-{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(f"1:{secrets.token_hex(32)}\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


def read_key_file(path: Path) -> tuple[int, bytes]:
    """(version, key) of the last line of a key file."""
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    try:
        version, hex_key = lines[-1].split(":", 1)
        return int(version), bytes.fromhex(hex_key)
    except (IndexError, ValueError):
        raise KeyFileError(f"{path}: expected lines of the form VERSION:HEXKEY; "
                           "the last line is the key in use.") from None
