"""Where statistics snapshots live: a Redis hash switched atomically, mirrored in the database.

Redis layout (cache DB): one hash ``nhis:stats:current`` maps payload names (``overview:2024``)
to ready-to-send JSON bytes, plus ``__meta__``. A refresh writes a staging hash and RENAMEs it
over the current one, so readers never see a half-written snapshot. The same generation is
written to ``stats_snapshots`` in one transaction; the API falls back to it when Redis is down
or empty, and a worker rebuilds Redis from it.

The table is addressed through a lightweight Core table clause rather than the ORM model: the web
process reads payloads through this module and must not import the model module (it pulls in the
rule engine and pandas). tests/unit/test_stats_keys.py keeps the two in step.
"""

from __future__ import annotations

import datetime as dt
import random
import time

import orjson
import structlog
from sqlalchemy import (
    BigInteger,
    DateTime,
    LargeBinary,
    String,
    Text,
    column,
    delete,
    func,
    insert,
    select,
    table,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from shared.db.engine import unit_of_work

SNAPSHOTS = table(
    "stats_snapshots",
    column("generation", BigInteger), column("key", String), column("payload", LargeBinary),
    column("dataset_version", Text), column("rule_version", String), column("computed_at", DateTime),
)

CURRENT_KEY = "nhis:stats:current"
STAGING_KEY = "nhis:stats:staging:{generation}"
META_FIELD = "__meta__"
GENERATION_FIELD = "__generation__"
# Switch the staging hash in unless Redis already holds a newer generation (a late writer loses).
_SWITCH = """
local held = redis.call('hget', KEYS[2], ARGV[2])
if held and tonumber(held) > tonumber(ARGV[1]) then
  redis.call('del', KEYS[1])
  return 0
end
redis.call('rename', KEYS[1], KEYS[2])
return 1
"""


log = structlog.get_logger(__name__)
WRITE_ATTEMPTS = 8
# InnoDB rolled the whole transaction back: a deadlock victim, or a lock wait that timed out.
RETRY_ERRNOS = (1205, 1213)


class StaleSnapshot(Exception):
    """The data a refresh read is no longer current; its generation must not be published."""
KEEP_GENERATIONS = 2
STALE_FALSE = b'"stale":false'
STALE_TRUE = b'"stale":true'


def has_snapshot(resources) -> bool:
    with unit_of_work(resources.sessions) as session:
        return session.scalar(select(func.count()).select_from(SNAPSHOTS)) > 0


def latest_generation(session) -> int | None:
    return session.scalar(select(func.max(SNAPSHOTS.c.generation)))


def write_generation(resources, payloads: dict[str, bytes], meta: dict, still_current=None) -> int:
    """Store one complete snapshot (database first, then Redis) and return its generation.

    `still_current(session)`, if given, runs inside the write transaction; when it returns False
    the snapshot was built from data that changed meanwhile and StaleSnapshot is raised.

    Two writers at once (the refresh lock normally prevents it, but a beat pass, a manual one and a
    lock that outlived its holder can overlap) read the same latest generation and insert the same
    keys: the database refuses one of them (duplicate key, or a deadlock victim), its transaction is
    rolled back whole, and it writes again under the next number after a jittered, doubling pause
    (0.05 s up to 2 s: the winner may be writing tens of MB, and an immediate retry deadlocks
    again). Nothing half-written is ever visible, and the newer generation wins.
    """
    computed_at = dt.datetime.fromisoformat(meta["computed_at"]).replace(tzinfo=None)
    everything = {**payloads, META_FIELD: orjson.dumps(meta)}
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            generation = _write_rows(resources, everything, meta, computed_at, still_current)
            break
        except (IntegrityError, OperationalError) as exc:
            if attempt == WRITE_ATTEMPTS or not _lost_to_another_writer(exc):
                raise
            pause = min(2.0, 0.05 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
            log.info("stats_generation_write_retried", attempt=attempt, error=type(exc.orig).__name__,
                     retry_in_seconds=round(pause, 3))
            time.sleep(pause)
    publish_to_cache(resources, generation, everything)
    return generation


def _lost_to_another_writer(exc: IntegrityError | OperationalError) -> bool:
    if isinstance(exc, IntegrityError):  # the same (generation, key) committed by the other writer
        return True
    args = getattr(exc.orig, "args", ())
    return bool(args) and args[0] in RETRY_ERRNOS


def _write_rows(resources, everything: dict[str, bytes], meta: dict, computed_at, still_current) -> int:
    with unit_of_work(resources.sessions) as session:
        if still_current is not None and not still_current(session):
            raise StaleSnapshot(meta.get("dataset_version"))
        generation = (latest_generation(session) or 0) + 1
        common = {"generation": generation, "dataset_version": meta["dataset_version"],
                  "rule_version": meta["rule_version"], "computed_at": computed_at}
        for batch in _batches(everything):  # one transaction, statements kept under max_allowed_packet
            session.execute(insert(SNAPSHOTS), [{**common, "key": k, "payload": v} for k, v in batch])
        session.execute(delete(SNAPSHOTS).where(SNAPSHOTS.c.generation <= generation - KEEP_GENERATIONS))
    return generation


def _batches(payloads: dict[str, bytes], limit: int = 2 * 1024 * 1024):
    batch, size = [], 0
    for item in payloads.items():
        if batch and size + len(item[1]) > limit:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += len(item[1])
    if batch:
        yield batch


def publish_to_cache(resources, generation: int, payloads: dict[str, bytes]) -> bool:
    cache = resources.cache
    if cache is None:
        return False
    staging = STAGING_KEY.format(generation=generation)
    pipe = cache.pipeline(transaction=True)
    pipe.delete(staging)
    pipe.hset(staging, mapping={**payloads, GENERATION_FIELD: str(generation)})
    pipe.eval(_SWITCH, 2, staging, CURRENT_KEY, generation, GENERATION_FIELD)
    switched = pipe.execute()[-1]
    return bool(switched)


def load_generation(resources, generation: int | None = None) -> dict[str, bytes]:
    with unit_of_work(resources.sessions) as session:
        if generation is None:
            generation = latest_generation(session)
        if generation is None:
            return {}
        rows = session.execute(
            select(SNAPSHOTS.c.key, SNAPSHOTS.c.payload).where(SNAPSHOTS.c.generation == generation)
        )
        return {key: bytes(payload) for key, payload in rows}


def rewarm_cache(resources) -> bool:
    """Copy the newest database snapshot into Redis (after a Redis restart or flush)."""
    with unit_of_work(resources.sessions) as session:
        generation = latest_generation(session)
    if generation is None:
        return False
    return publish_to_cache(resources, generation, load_generation(resources, generation))


def ensure_cache_warm(resources) -> bool:
    """Copy the database snapshot back into Redis if Redis lost it (restart or flush)."""
    if resources.cache is None or cache_is_warm(resources):
        return False
    return rewarm_cache(resources)


def cache_is_warm(resources) -> bool:
    cache = resources.cache
    return cache is not None and bool(cache.hexists(CURRENT_KEY, META_FIELD))


def read_payload_from_cache(cache, name: str) -> bytes | None:
    return cache.hget(CURRENT_KEY, name)


def read_payload_from_db(resources, name: str) -> bytes | None:
    with unit_of_work(resources.sessions) as session:
        payload = session.scalar(
            select(SNAPSHOTS.c.payload)
            .where(SNAPSHOTS.c.key == name)
            .order_by(SNAPSHOTS.c.generation.desc())
            .limit(1)
        )
    return bytes(payload) if payload is not None else None


def read_payload(resources, name: str) -> tuple[bytes | None, str]:
    """Redis first; the database copy when Redis is down or flushed, or in embedded mode.

    Returns the bytes and where they came from: "hit", "fallback" or "database".
    """
    if resources.cache is None:
        return read_payload_from_db(resources, name), "database"
    try:
        payload = read_payload_from_cache(resources.cache, name)
    except Exception:  # Redis down: the snapshot in the database answers
        payload = None
    if payload is not None:
        return payload, "hit"
    return read_payload_from_db(resources, name), "fallback"


def read_meta(resources) -> dict | None:
    raw, _source = read_payload(resources, META_FIELD)
    return orjson.loads(raw) if raw else None


def mark_stale(resources) -> None:
    """Flag the current snapshot stale (a newer ETL succeeded) without recomputing it."""
    with unit_of_work(resources.sessions) as session:
        generation = latest_generation(session)
    if generation is None:
        return
    payloads = load_generation(resources, generation)
    marked = {k: v.replace(STALE_FALSE, STALE_TRUE, 1) for k, v in payloads.items()}
    with unit_of_work(resources.sessions) as session:
        for key, payload in marked.items():
            if payload != payloads[key]:
                session.execute(
                    SNAPSHOTS.update()
                    .where(SNAPSHOTS.c.generation == generation, SNAPSHOTS.c.key == key)
                    .values(payload=payload)
                )
    publish_to_cache(resources, generation, marked)

