"""Prometheus metrics: gauges computed at scrape time from the system of record (so any Gunicorn
worker answers the same), plus the few process counters of api/observability.py. Needs
`Authorization: Bearer $NHIS_METRICS_TOKEN`; with no token configured the route is off (404)."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from api.auth import metrics_token_ok, public
from api.errors import ApiError
from api.extensions import resources
from api.observability import process_registry
from shared import task_names
from shared.db.engine import unit_of_work
from shared.db.models import EtlJob, YearVersion
from shared.stats.store import read_meta

bp = Blueprint("metrics", __name__)


class SystemCollector:
    def __init__(self, res):
        self.res = res

    def collect(self):
        jobs = GaugeMetricFamily("nhis_etl_jobs", "ETL jobs by status", labels=["status"])
        rows = GaugeMetricFamily("nhis_screening_rows", "rows of the current version of every year")
        with unit_of_work(self.res.sessions) as session:
            for status, n in session.execute(select(EtlJob.status, func.count()).group_by(EtlJob.status)):
                jobs.add_metric([status], n)
            rows.add_metric([], session.scalar(
                select(func.coalesce(func.sum(EtlJob.rows_loaded), 0))
                .where(EtlJob.id.in_(select(YearVersion.job_id)))))  # no COUNT(*) over 1M rows
        yield jobs
        yield rows
        meta = read_meta(self.res)
        if meta:
            age = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(meta["computed_at"])).total_seconds()
            yield GaugeMetricFamily("nhis_stats_snapshot_age_seconds", "age of the published statistics", value=age)
        if not self.res.settings.embedded:
            import redis

            depth = GaugeMetricFamily("nhis_queue_length", "messages waiting in a Celery queue", labels=["queue"])
            client = redis.Redis.from_url(self.res.settings.redis_db_url("broker"), socket_timeout=2)
            for queue in (task_names.QUEUE_ETL, task_names.QUEUE_STATS):
                depth.add_metric([queue], client.llen(queue))
            client.close()
            yield depth


@bp.get("/metrics")
@public
def metrics():
    settings = current_app.config["SETTINGS"]
    if not settings.metrics_token:
        raise ApiError(404, "not_found", "metrics are off: set NHIS_METRICS_TOKEN to enable them")
    if not metrics_token_ok(settings, request.headers.get("Authorization")):
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <NHIS_METRICS_TOKEN>",
                       headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    registry = CollectorRegistry()
    registry.register(SystemCollector(resources()))
    body = generate_latest(registry) + generate_latest(process_registry() or REGISTRY)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)
