"""Loaded into a test worker with `celery worker -I tests.support.crash_chunk`: the process that
derives the chunk named by TEST_CRASH_CHUNK (a chunk index) kills itself with SIGKILL, as a worker
that runs out of memory on a poison chunk would. Only tests start workers with it."""

from __future__ import annotations

import os
import signal

import shared.etl.transform as transform

_TARGET = int(os.environ.get("TEST_CRASH_CHUNK", "-1"))
_derive = transform.derive


def _crashing_derive(frame, job_id, chunk_index):
    if chunk_index == _TARGET:
        os.kill(os.getpid(), signal.SIGKILL)
    return _derive(frame, job_id, chunk_index)


transform.derive = _crashing_derive
