"""Worker liveness without a broadcast ping: each worker node writes a heartbeat every few seconds.

Why: the ETL must know within seconds that the worker holding a chunk is gone (SIGKILL, host
lost, OOM-killed child), and `/ready` must know whether any worker is up, without a broadcast
`inspect ping` that holds a web worker for a second. A heartbeat names the node and the pids of its
pool processes, so a chunk held by a pid that died while its node lives on (a child killed by the
kernel and replaced by the pool) is recognised as lost too.

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

    def holds(self, pid: int | None) -> bool:
        return pid is None or pid in self.pids

    def as_dict(self) -> dict:
        return {"node": self.node, "pids": list(self.pids), "queues": list(self.queues),
                "started_at": self.started_at, "seen_at": self.seen_at}


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
        )
    return out


def holder_alive(workers: dict[str, WorkerBeat], node: str | None, pid: int | None) -> bool:
    """Whether the process that claimed a chunk (node, pid) still runs, by the heartbeats."""
    if node is None:
        return False
    beat = workers.get(node)
    return beat is not None and beat.holds(pid)
