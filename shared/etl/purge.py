"""Removing what no reader can see any more: rows and partials of retired and discarded versions,
and uploaded files of ended jobs.

Rows go in bounded batches of primary-key ranges (`(job_id, id)` makes each batch a short range
delete), each in its own short transaction, so the table is never locked for long and readers of
the current versions never wait. Idempotent and safe to run concurrently.
"""

from __future__ import annotations

import time
from pathlib import Path

import structlog
from sqlalchemy import delete, select, update

from shared.db.engine import unit_of_work
from shared.db.models import EtlDuplicate, EtlJob, StatsPartial, YearVersion, screenings, utcnow
from shared.etl.states import TERMINAL_JOB, VersionState

log = structlog.get_logger(__name__)
BATCH_ROWS = 20_000


def purge_versions(resources, batch_rows: int = BATCH_ROWS) -> dict:
    purged: list[int] = []
    rows = 0
    with unit_of_work(resources.sessions) as session:
        current = select(YearVersion.job_id)
        doomed = list(session.scalars(
            select(EtlJob.id).where(EtlJob.version_state.in_([VersionState.RETIRED, VersionState.DISCARDED]),
                                    EtlJob.id.not_in(current)).order_by(EtlJob.id)
        ))
    for job_id in doomed:
        rows += delete_version_rows(resources, job_id, batch_rows)
        with unit_of_work(resources.sessions) as session:
            session.execute(delete(StatsPartial).where(StatsPartial.job_id == job_id))
            session.execute(delete(EtlDuplicate).where(EtlDuplicate.job_id == job_id))
            session.execute(
                update(EtlJob).where(EtlJob.id == job_id,
                                     EtlJob.version_state.in_([VersionState.RETIRED, VersionState.DISCARDED]))
                .values(version_state=VersionState.PURGED, purged_at=utcnow())
            )
        purged.append(job_id)
    removed = remove_ended_uploads(resources)
    if purged or removed:
        log.info("etl_versions_purged", jobs=purged, rows=rows, uploads_removed=removed)
    return {"jobs": purged, "rows": rows, "uploads_removed": removed}


def delete_version_rows(resources, job_id: int, batch_rows: int = BATCH_ROWS) -> int:
    """Delete one version's rows, `batch_rows` at a time, one short transaction per batch."""
    t = screenings.c
    total = 0
    while True:
        with unit_of_work(resources.sessions) as session:
            cut = session.scalar(
                select(t.id).where(t.job_id == job_id).order_by(t.id).offset(batch_rows - 1).limit(1)
            )
            condition = t.job_id == job_id if cut is None else (t.job_id == job_id) & (t.id <= cut)
            total += session.execute(delete(screenings).where(condition)).rowcount
        if cut is None:
            return total


PART_MAX_AGE_SECONDS = 24 * 3600


def remove_ended_uploads(resources) -> int:
    """Uploaded files whose job has ended (kept when NHIS_KEEP_UPLOADS=1), and parts of uploads
    whose request never finished (older than a day)."""
    removed = 0
    folder = resources.settings.data_dir / "uploads"
    if folder.is_dir():
        cutoff = time.time() - PART_MAX_AGE_SECONDS
        for part in folder.glob(".upload-*.part"):
            try:
                if part.stat().st_mtime < cutoff:
                    part.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
    if resources.settings.keep_uploads:
        return removed
    with unit_of_work(resources.sessions) as session:
        paths = list(session.scalars(
            select(EtlJob.source_path).where(EtlJob.upload.is_(True),
                                             EtlJob.status.in_([s.value for s in TERMINAL_JOB]))
        ))
    for path in paths:
        try:
            Path(path).unlink()
            removed += 1
        except FileNotFoundError:
            continue
    return removed
