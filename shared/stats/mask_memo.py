"""Suppression masks remembered by what they were computed from.

Why: the suppression pass (:mod:`shared.stats.suppression`) is the costly part of a refresh, and a
beat refresh recomputes every year although usually none, or one, changed. A mask is a pure
function of its inputs (the year's cubes, the weights, k and the code of the pass), so the refresh
keys it by a digest of exactly those and reuses it when they are unchanged; any change to the
data, to k or to the suppression module's source gives a new digest, hence a fresh pass.

Where: Redis when the system has one (shared by every worker process and host, content-addressed,
so concurrent writers write the same bytes), otherwise a small in-process map (the embedded
default). A mask says only which cells are withheld, which every payload already shows.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

import structlog
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

KEY_PREFIX = "nhis:stats:mask:"
TTL_SECONDS = 7 * 24 * 3600
LOCAL_ENTRIES = 64


class MaskMemo(Protocol):
    def get(self, digest: str) -> bytes | None: ...

    def put(self, digest: str, value: bytes) -> None: ...


class RedisMaskMemo:
    """A memo that cannot fail a refresh: with Redis unreachable the pass simply runs."""

    def __init__(self, client) -> None:
        self.client = client

    def get(self, digest: str) -> bytes | None:
        try:
            return self.client.get(KEY_PREFIX + digest)
        except RedisError as exc:
            log.warning("mask_memo_unavailable", error=type(exc).__name__)
            return None

    def put(self, digest: str, value: bytes) -> None:
        try:
            self.client.set(KEY_PREFIX + digest, value, ex=TTL_SECONDS)
        except RedisError as exc:
            log.warning("mask_memo_unavailable", error=type(exc).__name__)


class LocalMaskMemo:
    """Bounded least-recently-used map (one process)."""

    def __init__(self, entries: int = LOCAL_ENTRIES) -> None:
        self.entries = entries
        self._items: OrderedDict[str, bytes] = OrderedDict()

    def get(self, digest: str) -> bytes | None:
        value = self._items.get(digest)
        if value is not None:
            self._items.move_to_end(digest)
        return value

    def put(self, digest: str, value: bytes) -> None:
        self._items[digest] = value
        self._items.move_to_end(digest)
        while len(self._items) > self.entries:
            self._items.popitem(last=False)

    def clear(self) -> int:
        count = len(self._items)
        self._items.clear()
        return count


_local = LocalMaskMemo()


def memo_for(resources) -> MaskMemo:
    return RedisMaskMemo(resources.cache) if resources.cache is not None else _local


def forget(resources) -> int:
    """Drop every remembered mask (benchmarks measure the pass cold; operators may want it too)."""
    if resources.cache is None:
        return _local.clear()
    keys = list(resources.cache.scan_iter(match=KEY_PREFIX + "*", count=1000))
    return resources.cache.delete(*keys) if keys else 0
