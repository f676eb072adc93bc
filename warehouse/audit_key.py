"""The audit trail's key: HMAC-SHA256 over every chained entry and head, kept outside the lake.

Like the pseudonym key: ``SHUKU_AUDIT_KEY`` (hex), else ``secrets/audit.key`` under the home
folder (0600 in a 0700 folder, made with the first entry of a new trail or by
``shuku audit rekey``). Whoever can read it can forge the trail; whoever can only write the
lake cannot.
"""

from __future__ import annotations

import os

from warehouse.keys import create_key_file, read_key_file
from warehouse.settings import Settings

AUDIT_KEY_FILE = "audit.key"
AUDIT_KEY_ENV = "SHUKU_AUDIT_KEY"


class AuditKeyError(RuntimeError):
    """The audit key cannot be read; the message says where it was looked for."""


def audit_key(settings: Settings, create: bool) -> bytes | None:
    """The audit key; None when there is none yet and ``create`` is False."""
    if os.environ.get(AUDIT_KEY_ENV):
        try:
            return bytes.fromhex(os.environ[AUDIT_KEY_ENV])
        except ValueError:
            raise AuditKeyError(f"{AUDIT_KEY_ENV} is not hexadecimal; set it to 64 hex characters.") from None
    path = settings.secrets_dir / AUDIT_KEY_FILE
    if not path.exists():
        if not create:
            return None
        create_key_file(path)
    return read_key_file(path)[1]
