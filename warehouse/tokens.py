"""API tokens for the HTTP interface: each bound to one role, stored hashed, revocable.

A token reads ``shuku_<id>_<secret>``: the id (8 hex characters) names it in lists, logs and
revocations; the secret (32 random bytes, URL-safe) is shown once, when it is created, and only
its SHA-256 is kept, in ``secrets/api_tokens.json`` (mode 0600) under the home folder. A
random 256-bit secret needs no slow hash: nobody can guess it from its SHA-256.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import hmac
import json
import re
import secrets
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from schemas.roles import role_named
from warehouse.lake.files import write_text_atomic
from warehouse.settings import Settings

TOKENS_FILE = "api_tokens.json"
TOKEN = re.compile(r"^shuku_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class TokenError(ValueError):
    """A token that cannot be created or revoked; the message says what to do."""


@dataclass(frozen=True)
class ApiToken:
    token_id: str
    name: str           # the calling system, e.g. discovery-portal; recorded as the access log's user
    role: str
    secret_sha256: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def tokens_path(settings: Settings) -> Path:
    return settings.secrets_dir / TOKENS_FILE


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0, tzinfo=None).isoformat()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def load_tokens(settings: Settings) -> list[ApiToken]:
    path = tokens_path(settings)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [ApiToken(**item) for item in data["tokens"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenError(f"{path}: not a token file Shuku wrote ({exc}); restore it from a backup, "
                         "or move it away and create the tokens again.") from None


@contextmanager
def _editing(settings: Settings) -> Iterator[list[ApiToken]]:
    settings.ensure()
    path = tokens_path(settings)
    with open(path.with_name(TOKENS_FILE + ".lock"), "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        tokens = load_tokens(settings)
        yield tokens
        write_text_atomic(path, json.dumps({"tokens": [asdict(t) for t in tokens]}, indent=1), mode=0o600)


def create_token(settings: Settings, role: str, name: str) -> tuple[ApiToken, str]:
    """A new token for ``role``; returns it and the full token text (shown once, never stored)."""
    role_named(role)
    if not NAME.match(name):
        raise TokenError(f"token name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-' "
                         "(the calling system, e.g. discovery-portal); never a person's name.")
    secret = secrets.token_urlsafe(32)
    with _editing(settings) as tokens:
        token_id = secrets.token_hex(4)
        while any(t.token_id == token_id for t in tokens):
            token_id = secrets.token_hex(4)
        token = ApiToken(token_id, name, role, _digest(secret), _now())
        tokens.append(token)
    return token, f"shuku_{token_id}_{secret}"


def revoke_token(settings: Settings, token_id: str) -> ApiToken:
    with _editing(settings) as tokens:
        for i, token in enumerate(tokens):
            if token.token_id == token_id:
                if token.active:
                    tokens[i] = token = ApiToken(**{**asdict(token), "revoked_at": _now()})
                return token
    raise TokenError(f"no token {token_id!r}; `shuku token list` shows the ids.")


def authenticate(tokens: list[ApiToken], text: str) -> ApiToken | None:
    """The active token ``text`` is, or None (malformed, unknown, revoked or a wrong secret)."""
    match = TOKEN.match(text or "")
    if not match:
        return None
    token_id, secret = match.groups()
    for token in tokens:
        if token.token_id == token_id and token.active and hmac.compare_digest(token.secret_sha256, _digest(secret)):
            return token
    return None
