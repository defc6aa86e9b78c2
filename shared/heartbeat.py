"""Worker liveness without a broadcast ping: each worker node writes a heartbeat every few seconds.

Why: the ETL must know within seconds that the worker holding a chunk is gone (SIGKILL, host
lost, OOM-killed child), and `/ready` must know whether any worker is up, without a broadcast
`inspect ping` that holds a web worker for a second. A heartbeat names the node, the pids of its
pool processes and the chunks its processes are running right now (from the worker's own table of
active requests), so a chunk is known to be held exactly while its holder runs it: a holder that
died with its node, a child killed by the kernel and replaced by the pool, or a process that gave
the chunk up without being able to say so (the database was down) all count as gone.

Storage: one Redis key per node with a TTL (`nhis:worker:<node>`, cache DB) when Redis is
configured; in embedded mode (one host) one JSON file per node under `NHIS_DATA_DIR/workers`, alive
while its modification time is recent.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

KEY_PREFIX = "nhis:worker:"
MISSED_BEATS = 5  # a node is gone after this many missed heartbeats


@dataclass(frozen=True)
class WorkerBeat:
    node: str
    pids: tuple[int, ...]  # the node's main process and its pool processes
    queues: tuple[str, ...]
    started_at: float
    seen_at: float
    chunks: tuple[tuple[int, int, int], ...] = ()  # (job_id, chunk_index, pid) running now

    def holds(self, pid: int | None) -> bool:
        return pid is None or pid in self.pids

    def as_dict(self) -> dict:
        return {"node": self.node, "pids": list(self.pids), "queues": list(self.queues),
                "started_at": self.started_at, "seen_at": self.seen_at, "chunks": [list(c) for c in self.chunks]}


def ttl_seconds(settings) -> int:
    return max(2, round(settings.worker_heartbeat_seconds * MISSED_BEATS))


def _folder(settings) -> Path:
    return settings.data_dir / "workers"


def write_beat(resources, beat: WorkerBeat) -> None:
    """Record that `beat.node` is alive now (called by the node's main process on a timer)."""
    payload = json.dumps(beat.as_dict())
    settings = resources.settings
    if resources.cache is not None:
        resources.cache.set(KEY_PREFIX + beat.node, payload, ex=ttl_seconds(settings))
        return
    folder = _folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{beat.node}.{os.getpid()}.tmp"
    tmp.write_text(payload)
    os.replace(tmp, folder / f"{beat.node}.json")


def remove_beat(resources, node: str) -> None:
    """A node shutting down cleanly says so at once instead of waiting for its beat to expire."""
    if resources.cache is not None:
        resources.cache.delete(KEY_PREFIX + node)
    else:
        (_folder(resources.settings) / f"{node}.json").unlink(missing_ok=True)


def alive_workers(resources) -> dict[str, WorkerBeat]:
    """Every node with a fresh heartbeat; raises if the heartbeat store cannot be read."""
    now = time.time()
    ttl = ttl_seconds(resources.settings)
    raw: list[bytes | str] = []
    if resources.cache is not None:
        keys = list(resources.cache.scan_iter(match=KEY_PREFIX + "*", count=200))
        raw = [v for v in (resources.cache.mget(keys) if keys else []) if v is not None]
    else:
        folder = _folder(resources.settings)
        for path in folder.glob("*.json") if folder.is_dir() else ():
            try:
                if now - path.stat().st_mtime <= ttl:
                    raw.append(path.read_text())
            except FileNotFoundError:  # removed by a node shutting down meanwhile
                continue
    out: dict[str, WorkerBeat] = {}
    for item in raw:
        data = json.loads(item)
        out[data["node"]] = WorkerBeat(
            node=data["node"], pids=tuple(data["pids"]), queues=tuple(data["queues"]),
            started_at=data["started_at"], seen_at=data["seen_at"],
            chunks=tuple(tuple(c) for c in data.get("chunks", ())),
        )
    return out


def holder_alive(workers: dict[str, WorkerBeat], node: str | None, pid: int | None) -> bool:
    """Whether the process that claimed a chunk (node, pid) still runs, by the heartbeats."""
    if node is None:
        return False
    beat = workers.get(node)
    return beat is not None and beat.holds(pid)


def chunk_held(workers: dict[str, WorkerBeat], node: str | None, pid: int | None, job_id: int, chunk_index: int,
               claimed_ago: float, settings) -> bool:
    """Whether the claim (node, pid) on a chunk is still being worked on.

    True when the holder's node lists the chunk as running in that pid, or when the claim is
    younger than two heartbeats and the pid is alive (its node has not beaten since the claim).
    """
    beat = workers.get(node) if node is not None else None
    if beat is None:
        return False
    if (job_id, chunk_index, pid) in beat.chunks:
        return True
    return claimed_ago < 2 * settings.worker_heartbeat_seconds + 1 and beat.holds(pid)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True
