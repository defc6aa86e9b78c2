"""ETL tasks: thin wrappers that call shared.etl with ids, never objects.

Every task is idempotent (late ack + reject on worker lost may run it twice); attempts are
counted in the database, not by the broker, so a poison chunk cannot loop forever.
"""

from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded

from shared import task_names
from shared.etl import chunk as chunk_mod
from shared.etl.finalize import finalize_job
from shared.etl.plan import plan_job
from shared.etl.reaper import reap
from workers.celery_app import app


@app.task(name=task_names.ETL_PLAN_JOB)
def plan(job_id: int) -> None:
    plan_job(app.resources, job_id)


@app.task(name=task_names.ETL_LOAD_CHUNK, bind=True, max_retries=None)
def load_chunk(self, job_id: int, chunk_index: int) -> dict:
    resources = app.resources
    try:
        return chunk_mod.load_chunk(resources, job_id, chunk_index)
    except SoftTimeLimitExceeded:
        chunk_mod.record_failure(resources, job_id, chunk_index, "chunk exceeded its time limit")
        raise
    except Exception as exc:
        attempts = chunk_mod.record_failure(resources, job_id, chunk_index, f"{type(exc).__name__}: {exc}")
        if 0 < attempts < resources.settings.chunk_max_attempts:
            raise self.retry(exc=exc, countdown=min(2**attempts, 30)) from exc
        raise  # the reaper fails the job naming this chunk


@app.task(name=task_names.ETL_FINALIZE_JOB)
def finalize(job_id: int) -> str:
    return finalize_job(app.resources, job_id)


@app.task(name=task_names.ETL_REAP, ignore_result=True)
def reaper() -> dict:
    return reap(app.resources)
