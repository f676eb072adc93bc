"""Who calls the HTTP interface and how much: its limits, its tokens and a rate per token."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from warehouse.settings import Settings
from warehouse.tokens import ApiToken, authenticate, load_tokens, tokens_path


@dataclass(frozen=True)
class ApiLimits:
    """What one caller may take, so that it cannot starve the others."""

    page_size: int = 1_000           # rows per page when the caller does not say
    max_page_size: int = 10_000
    query_timeout_s: float = 10.0    # then DuckDB is interrupted
    max_query_rows: int = 50_000     # rows one query may return
    rate_per_s: float = 20.0         # requests per second per token (a token bucket) …
    burst: int = 40                  # … with this many at once
    max_body_bytes: int = 1_000_000  # a query's JSON body
    refusal_window_s: float = 60.0   # refusals without a valid token: one access-log entry per kind and window


class RateLimiter:
    """A token bucket per API token, in memory (one server process)."""

    def __init__(self, rate_per_s: float, burst: int):
        self.rate, self.burst = rate_per_s, burst
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when the request may go, else the seconds to wait."""
        now = time.monotonic()
        with self.lock:
            level, since = self.buckets.get(key, (float(self.burst), now))
            level = min(float(self.burst), level + (now - since) * self.rate)
            if level < 1:
                self.buckets[key] = (level, now)
                return (1 - level) / self.rate
            self.buckets[key] = (level - 1, now)
            return 0.0


class Tokens:
    """The token file, re-read when it changes (a revocation takes effect at the next request)."""

    def __init__(self, settings: Settings):
        self.settings, self.stamp, self.tokens = settings, None, []
        self.lock = threading.Lock()

    def find(self, text: str) -> ApiToken | None:
        path = tokens_path(self.settings)
        stamp = path.stat().st_mtime_ns if path.exists() else None
        with self.lock:
            if stamp != self.stamp:
                self.tokens, self.stamp = load_tokens(self.settings), stamp
            tokens = self.tokens
        return authenticate(tokens, text)
