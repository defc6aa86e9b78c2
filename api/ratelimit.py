"""Rate limits per API key and scope, and per client address without a valid key.

One counter per (bucket, identity, window) in the Redis DB reserved for rate limits
(`REDIS_URL` index + 3): a fixed window aligned to the clock. Both the Flask hook (api/auth.py)
and the WSGI fast paths (api/fastpath.py) call `RateLimiter.hit`, so a request counts once,
against the same counter, whichever path answers it.

Counting without a round trip per request: a process *reserves* a block of places in the window
with one pipelined `INCRBY` + `EXPIRE NX` and hands them out to its requests one by one; each
request's place is unique across all processes and hosts, so the limit is never exceeded, and the
`RateLimit-Remaining` a client sees is exact for its place. The block is a sixteenth of what is
left of the limit (at most 64, at least 1), so a key far below its limit costs one round trip per
tens of requests and a key near it costs one per request. The price: places a process reserved
and did not use before the window ends are lost, so other processes may refuse a little early
(at most `blocks × workers` places, and only while far from the limit).

Why our own counter rather than Flask-Limiter: its checks run as Flask hooks, which the fast paths
skip by design, and its `limits` storage needs extra round trips per request for the remaining
count and reset time that the `RateLimit-*` headers need. An aligned fixed window gives both
from one `INCR` (the reset is the window's end, known locally). The cost of an aligned window is
that a client may send up to twice the limit across a window boundary; the documented limits
are set with that in mind (docs/SECURITY.md).

Redis unavailable: reads fail open (the request is served, logged once per cool-down and counted
in `nhis_ratelimit_storage_errors_total`), routes that create work fail closed (503). After an
error the limiter does not try Redis again for `COOLDOWN_SECONDS`, so an outage costs each
request nothing. Embedded mode (no Redis) counts in process memory: one host, limits per process.
"""

from __future__ import annotations

import threading
import time
from typing import NamedTuple

import structlog

from api.observability import RATELIMIT_STORAGE_ERRORS
from shared.config import RateLimit, Settings

log = structlog.get_logger(__name__)

COOLDOWN_SECONDS = 2.0
KEY_PREFIX = "nhis:rl:"
LEASE_SHARE = 16  # a reservation takes 1/LEASE_SHARE of what is left of the limit
LEASE_MAX = 64


class Decision(NamedTuple):
    """The outcome of counting one request; `headers()` are sent on every limited response.
    (A named tuple: immutable like a frozen dataclass, and built in a fifth of the time on the
    fast paths, where one is made per request.)"""

    allowed: bool
    limit: RateLimit | None
    remaining: int
    reset: int  # seconds until the current window ends
    storage_down: bool = False  # Redis failed: allowed means failed open, refused means failed closed

    def headers(self) -> list[tuple[str, str]]:
        if self.limit is None or self.storage_down:
            return []
        out = [
            ("RateLimit-Limit", str(self.limit.count)),
            ("RateLimit-Remaining", str(self.remaining)),
            ("RateLimit-Reset", str(self.reset)),
            ("RateLimit-Policy", f"{self.limit.count};w={self.limit.seconds}"),
        ]
        if not self.allowed:
            out.append(("Retry-After", str(self.reset)))
        return out


UNLIMITED = Decision(True, None, 0, 0)


class _MemoryCounter:
    """Embedded mode: counters in this process (no Redis to share them through)."""

    def __init__(self):
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def incr(self, key: str, expires_at: float, now: float) -> int:
        with self._lock:
            if len(self._counts) > 50_000:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            count = self._counts.get(key, (0, expires_at))[0] + 1
            self._counts[key] = (count, expires_at)
            return count


class RateLimiter:
    def __init__(self, settings: Settings, clock=time.time):
        self.table = settings.rate_limit_table
        self.clock = clock
        self._down_until = 0.0
        self._memory = _MemoryCounter() if settings.embedded else None
        self._redis = None
        if not settings.embedded:
            import redis

            self._redis = redis.Redis.from_url(
                settings.redis_db_url("ratelimit"), socket_timeout=0.5, socket_connect_timeout=0.5,
                health_check_interval=30,
            )
        self.storage_errors = 0  # this process; exported by api/observability.py
        self._leases: dict[str, list[int]] = {}  # key -> [next place, last place] reserved here
        self._lease_lock = threading.Lock()

    def hit(self, bucket: str, identity: str, *, fail_closed: bool = False) -> Decision:
        """Count one request of `identity` (e.g. `k12` for key 12, `a10.0.0.7` for an address)."""
        limit = self.table.get(bucket)
        if limit is None:
            return UNLIMITED
        now = self.clock()
        window = int(now // limit.seconds)
        reset = max(1, int((window + 1) * limit.seconds - now + 0.999))
        key = f"{KEY_PREFIX}{bucket}:{identity}:{limit.seconds}:{window}"
        if self._memory is not None:
            count = self._memory.incr(key, (window + 1) * limit.seconds, now)
        else:
            count = self._place(key, limit, fail_closed)
            if count is None:
                return Decision(not fail_closed, limit, 0, reset, storage_down=True)
        return Decision(count <= limit.count, limit, max(0, limit.count - count), reset)

    def _place(self, key: str, limit: RateLimit, fail_closed: bool) -> int | None:
        """This request's place in the window: from this process's reserved block, or a new block."""
        with self._lease_lock:
            lease = self._leases.get(key)
            if lease is not None and lease[0] <= lease[1]:
                lease[0] += 1
                return lease[0] - 1
            left = limit.count - (lease[1] if lease is not None else 0)
            block = max(1, min(LEASE_MAX, left // LEASE_SHARE))
            end = self._incr_redis(key, limit.seconds, block, fail_closed)
            if end is None:
                return None
            if len(self._leases) > 10_000:  # keys of ended windows
                self._leases.clear()
            self._leases[key] = [end - block + 2, end]
            return end - block + 1

    def _incr_redis(self, key: str, seconds: int, block: int, fail_closed: bool) -> int | None:
        if self._down_until > time.monotonic():
            self._record_error(None, fail_closed)
            return None
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.incrby(key, block)
            pipe.expire(key, seconds + 1, nx=True)
            return int(pipe.execute()[0])
        except Exception as exc:  # connection refused, timeout, OOM: the storage is unavailable
            self._down_until = time.monotonic() + COOLDOWN_SECONDS
            self._record_error(exc, fail_closed)
            return None

    def _record_error(self, exc: Exception | None, fail_closed: bool) -> None:
        self.storage_errors += 1
        RATELIMIT_STORAGE_ERRORS.labels("closed" if fail_closed else "open").inc()
        if exc is not None:  # once per cool-down, not once per request
            log.warning("ratelimit_storage_unavailable", error=type(exc).__name__,
                        retry_in_seconds=COOLDOWN_SECONDS)

    def warm(self) -> None:
        """Connect to the counters' Redis now (a new worker, before its first request); a failure
        is left to `hit`, which fails open or closed as the route says."""
        if self._redis is not None:
            try:
                self._redis.ping()
            except Exception:  # noqa: BLE001
                pass

    def reset_cooldown(self) -> None:
        self._down_until = 0.0
