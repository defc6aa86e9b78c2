"""The states an ETL job, a chunk and a year's version can be in (stored as their string values).

Every change of state is a guarded update that names the state it expects (see chunk.py,
finalize.py, reaper.py), so two processes racing on one row cannot both win.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_JOB


TERMINAL_JOB = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE_JOB = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})


class JobPhase(StrEnum):
    QUEUED = "queued"
    PLANNING = "planning"
    LOADING = "loading"
    FINALIZING = "finalizing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ChunkStatus(StrEnum):
    QUEUED = "queued"  # a message for it was sent; no process holds it
    RUNNING = "running"  # claimed by (worker, worker_pid); attempts counts the claims
    DONE = "done"  # rows, rejects and partial committed with this state
    FAILED = "failed"  # gave up after NHIS_CHUNK_MAX_ATTEMPTS claims; the job failed
    CANCELLED = "cancelled"  # its job ended before it ran


class VersionState(StrEnum):
    """A job's rows form one version of its year."""

    LOADING = "loading"  # being written; no reader sees it
    CURRENT = "current"  # the year's pointer (year_versions) names it
    RETIRED = "retired"  # replaced by a newer version; rows await the purge
    DISCARDED = "discarded"  # its job failed or was cancelled; rows await the purge
    PURGED = "purged"  # rows and partials removed
