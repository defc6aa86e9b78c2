"""Embedded-mode heartbeats are files under NHIS_DATA_DIR/workers, alive while fresh."""

from __future__ import annotations

import os
import time

from shared.heartbeat import WorkerBeat, alive_workers, holder_alive, remove_beat, ttl_seconds, write_beat


def test_file_heartbeats(sqlite_resources):
    now = time.time()
    write_beat(sqlite_resources, WorkerBeat("w1@host", (10, 11), ("etl",), now, now))
    write_beat(sqlite_resources, WorkerBeat("w2@host", (20,), ("stats",), now, now))
    workers = alive_workers(sqlite_resources)
    assert set(workers) == {"w1@host", "w2@host"}
    assert holder_alive(workers, "w1@host", 11) and not holder_alive(workers, "w1@host", 20)
    assert not holder_alive(workers, "w3@host", 11) and not holder_alive(workers, None, None)

    stale = sqlite_resources.settings.data_dir / "workers" / "w2@host.json"
    old = now - ttl_seconds(sqlite_resources.settings) - 1
    os.utime(stale, (old, old))
    assert set(alive_workers(sqlite_resources)) == {"w1@host"}

    remove_beat(sqlite_resources, "w1@host")
    assert alive_workers(sqlite_resources) == {}
