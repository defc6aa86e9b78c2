"""Task and queue names: the contract between the API/CLI (producers) and the workers.

Producers send tasks by these names (`send_task`), so `api/` never imports `workers/`.
"""

QUEUE_ETL = "etl"
QUEUE_STATS = "stats"

ETL_PLAN_JOB = "etl.plan_job"
ETL_LOAD_CHUNK = "etl.load_chunk"
ETL_FINALIZE_JOB = "etl.finalize_job"
ETL_REAP = "etl.reap"
ETL_PURGE_VERSIONS = "etl.purge_versions"
STATS_REFRESH = "stats.refresh"
SYSTEM_PING = "system.ping"

ROUTES = {
    ETL_PLAN_JOB: QUEUE_ETL,
    ETL_LOAD_CHUNK: QUEUE_ETL,
    ETL_FINALIZE_JOB: QUEUE_ETL,
    ETL_REAP: QUEUE_STATS,  # short bookkeeping: keep it off the queue that long chunks fill
    ETL_PURGE_VERSIONS: QUEUE_STATS,  # short batches; must not wait behind a long load
    STATS_REFRESH: QUEUE_STATS,
    SYSTEM_PING: QUEUE_STATS,
}
