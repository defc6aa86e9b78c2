"""ETL tasks: thin wrappers that call shared.etl with ids, never objects.

Every task is idempotent (late ack + reject on worker lost may run it twice). Attempts are counted
in the database when a chunk is claimed, never by the broker, so a chunk that kills its worker
every time fails its job after NHIS_CHUNK_MAX_ATTEMPTS claims instead of looping.
"""

from __future__ import annotations

import os

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError

from shared import task_names
from shared.etl import chunk as chunk_mod
from shared.etl.finalize import fail_job, finalize_job
from shared.etl.plan import plan_job
from shared.etl.purge import purge_versions
from shared.etl.reaper import reap
from workers.celery_app import app


@app.task(name=task_names.ETL_PLAN_JOB)
def plan(job_id: int) -> None:
    plan_job(app.resources, job_id)


DB_RETRY_SECONDS = 5


@app.task(name=task_names.ETL_LOAD_CHUNK, bind=True, max_retries=60)
def load_chunk(self, job_id: int, chunk_index: int) -> dict:
    resources = app.resources
    try:
        claim = chunk_mod.claim_chunk(resources, job_id, chunk_index, self.request.hostname, os.getpid())
    except DBAPIError as exc:  # the database is unreachable: try again shortly (the reaper also re-sends)
        raise self.retry(exc=exc, countdown=DB_RETRY_SECONDS) from exc
    if claim is None:
        return {"skipped": True}
    try:
        return chunk_mod.run_claim(resources, claim)
    except chunk_mod.SourceUnusable as exc:  # changed, removed or refused: a retry cannot help
        fail_job(resources, job_id, f"chunk {chunk_index} ({claim.lines}): {exc}")
        return {"failed": str(exc)}
    except Exception as exc:
        timed_out = isinstance(exc, SoftTimeLimitExceeded)
        error = "chunk exceeded its time limit" if timed_out else f"{type(exc).__name__}: {exc}"
        try:
            chunk_mod.release_chunk(resources, claim, error)
        except Exception:  # the database is down too: the retry (or the reaper) claims it later
            pass
        # The next claim counts the attempt and fails the job at the limit.
        raise self.retry(exc=exc, countdown=min(2 ** claim.attempts, 30)) from exc


@app.task(name=task_names.ETL_FINALIZE_JOB)
def finalize(job_id: int) -> str:
    return finalize_job(app.resources, job_id)


@app.task(name=task_names.ETL_REAP, ignore_result=True)
def reaper() -> dict:
    return reap(app.resources)


@app.task(name=task_names.ETL_PURGE_VERSIONS, ignore_result=True, soft_time_limit=3600, time_limit=3660)
def purge() -> dict:
    return purge_versions(app.resources)
