"""Typed settings built from the environment and `.env`.

`load_settings()` is called by the factories (Flask app, Celery app, CLI), never at import, so
tests and tools can build settings for any environment without touching `os.environ` first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url


class SettingsError(RuntimeError):
    """A bad configuration value; the message is one line naming the variable."""


@dataclass(frozen=True)
class RateLimit:
    """At most `count` requests per `seconds` (a fixed window aligned to the clock)."""

    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds}s"


_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT = re.compile(r"^(\d+)\s*(?:/|per)\s*(\d+)?\s*(second|minute|hour|day)s?$")
# Buckets: one per scope (the scope a route declares), `any` (routes any valid key may call) and
# `anonymous` (per client address: public routes and calls without a valid key).
RATE_LIMIT_BUCKETS = ("stats:read", "simulate", "records:read", "etl:write", "admin", "any", "anonymous")
DEFAULT_RATE_LIMITS = {
    "stats:read": RateLimit(1200, 60),
    "simulate": RateLimit(300, 60),
    "records:read": RateLimit(120, 60),
    "etl:write": RateLimit(60, 60),
    "admin": RateLimit(60, 60),
    "any": RateLimit(120, 60),
    "anonymous": RateLimit(120, 60),
}


def parse_rate_limits(text: str) -> dict[str, RateLimit]:
    """`stats:read=600/minute,simulate=100/10 seconds` -> {bucket: RateLimit}; ValueError on a bad item."""
    out: dict[str, RateLimit] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        bucket, _, spec = item.partition("=")
        bucket = bucket.strip()
        if bucket not in RATE_LIMIT_BUCKETS:
            raise ValueError(f"unknown bucket {bucket!r} (choose from {', '.join(RATE_LIMIT_BUCKETS)})")
        match = _LIMIT.match(spec.strip().lower())
        if match is None:
            raise ValueError(f"{item!r}: expected e.g. {bucket}=600/minute")
        count, multiple, period = int(match[1]), int(match[2] or 1), _PERIODS[match[3]]
        if count < 1 or multiple < 1:
            raise ValueError(f"{item!r}: count and period must be positive")
        out[bucket] = RateLimit(count, multiple * period)
    return out


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    data_dir: Path = Field(default=Path("./data"), alias="NHIS_DATA_DIR")
    small_cell_min: int = Field(default=11, ge=1, le=1000, alias="NHIS_SMALL_CELL_MIN")
    # >= 21: below that, nearest-rank p5 or p95 would be a group's minimum or maximum
    percentile_min_n: int = Field(default=100, ge=21, le=100_000, alias="NHIS_PERCENTILE_MIN_N")
    stats_refresh_seconds: int = Field(default=300, ge=5, alias="NHIS_STATS_REFRESH_SECONDS")
    chunk_rows: int = Field(default=50_000, ge=100, le=1_000_000, alias="NHIS_CHUNK_ROWS")
    chunk_timeout_seconds: int = Field(default=600, ge=10, alias="NHIS_CHUNK_TIMEOUT_SECONDS")
    chunk_max_attempts: int = Field(default=3, ge=1, le=20, alias="NHIS_CHUNK_MAX_ATTEMPTS")
    reaper_seconds: int = Field(default=10, ge=1, alias="NHIS_REAPER_SECONDS")
    worker_heartbeat_seconds: float = Field(default=2.0, ge=0.2, le=60, alias="NHIS_WORKER_HEARTBEAT_SECONDS")
    upload_max_mb: int = Field(default=1024, ge=1, alias="NHIS_UPLOAD_MAX_MB")
    keep_uploads: bool = Field(default=False, alias="NHIS_KEEP_UPLOADS")
    records_query_seconds: float = Field(default=3.0, gt=0, le=60, alias="NHIS_RECORDS_QUERY_SECONDS")
    chunk_max_mb: int = Field(default=16, ge=1, le=1024, alias="NHIS_CHUNK_MAX_MB")
    max_line_kb: int = Field(default=64, ge=1, le=16384, alias="NHIS_MAX_LINE_KB")
    # Ingest from URLs (shared/data/source.py): the allowed prefixes, comma-separated; empty refuses URLs.
    ingest_url_prefixes: str = Field(default="", alias="NHIS_INGEST_URL_PREFIXES")
    ingest_url_max_mb: int = Field(default=1024, ge=1, alias="NHIS_INGEST_URL_MAX_MB")
    ingest_url_connect_seconds: float = Field(default=5.0, gt=0, le=300, alias="NHIS_INGEST_URL_CONNECT_SECONDS")
    ingest_url_read_seconds: float = Field(default=20.0, gt=0, le=3600, alias="NHIS_INGEST_URL_READ_SECONDS")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    log_format: str = Field(default="json", pattern="^(json|console)$", alias="LOG_FORMAT")
    flower_basic_auth: str | None = Field(default=None, alias="FLOWER_BASIC_AUTH")
    # -- serving limits (docs/SECURITY.md) ------------------------------------------------------
    rate_limits: str = Field(default="", alias="NHIS_RATE_LIMITS")
    max_running_jobs_per_key: int = Field(default=2, ge=1, le=100, alias="NHIS_MAX_RUNNING_JOBS_PER_KEY")
    key_cache_seconds: float = Field(default=10.0, ge=0.5, le=300, alias="NHIS_KEY_CACHE_SECONDS")
    ready_cache_seconds: float = Field(default=5.0, ge=0, le=60, alias="NHIS_READY_CACHE_SECONDS")
    metrics_token: str | None = Field(default=None, min_length=16, alias="NHIS_METRICS_TOKEN")
    trusted_proxy_hops: int = Field(default=0, ge=0, le=5, alias="NHIS_TRUSTED_PROXY_HOPS")
    access_log: str = Field(default="errors", pattern="^(errors|all|off)$", alias="NHIS_ACCESS_LOG")
    # Aggregate statistics (GET /api/v1/stats/*) without a key, counted in the `anonymous` bucket
    # per client address: for a public dashboard. Off by default; records, the simulator and ETL
    # always need a key.
    public_stats: bool = Field(default=False, alias="NHIS_PUBLIC_STATS")
    # -- database timeouts per connection role (shared/db/engine.py) ----------------------------
    db_connect_timeout_seconds: float = Field(default=1.5, gt=0, le=60, alias="NHIS_DB_CONNECT_TIMEOUT_SECONDS")
    db_statement_timeout_seconds: float = Field(default=10.0, gt=0, le=600,
                                                alias="NHIS_DB_STATEMENT_TIMEOUT_SECONDS")
    db_read_timeout_seconds: int = Field(default=15, ge=1, le=3600, alias="NHIS_DB_READ_TIMEOUT_SECONDS")
    db_worker_read_timeout_seconds: int = Field(default=900, ge=10, le=86400,
                                                alias="NHIS_DB_WORKER_READ_TIMEOUT_SECONDS")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        try:
            url = make_url(value)
        except Exception:
            raise ValueError("not a database URL (expected mysql+pymysql://user:pass@host/db)") from None
        if url.get_backend_name() not in ("mysql", "mariadb", "sqlite"):
            raise ValueError("must be a mysql+pymysql:// (MySQL/MariaDB) or sqlite:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError("must look like redis://host:6379/0")
        db = parts.path.strip("/") or "0"
        if not db.isdigit() or int(db) > 12:
            raise ValueError("database index must be 0-12 (four consecutive indexes are used)")
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise ValueError(f"bad port ({exc})") from None
        return value

    @field_validator("rate_limits")
    @classmethod
    def _check_rate_limits(cls, value: str) -> str:
        parse_rate_limits(value)  # raises ValueError naming the bad item
        return value

    @model_validator(mode="after")
    def _read_timeout_above_statement_timeout(self):
        if self.db_read_timeout_seconds <= self.db_statement_timeout_seconds:
            raise ValueError("NHIS_DB_READ_TIMEOUT_SECONDS must exceed NHIS_DB_STATEMENT_TIMEOUT_SECONDS "
                             "(the server stops a slow query before the client gives up)")
        return self

    @field_validator("metrics_token", "flower_basic_auth", mode="before")
    @classmethod
    def _blank_is_unset(cls, value):
        return None if value == "" else value

    @field_validator("ingest_url_prefixes")
    @classmethod
    def _check_url_prefixes(cls, value: str) -> str:
        from shared.data.source import normalise_url  # standard library only

        prefixes = []
        for item in value.replace(",", " ").split():
            try:
                prefixes.append(normalise_url(item))
            except ValueError as exc:
                raise ValueError(f"{item!r}: {exc}") from None
        return ",".join(prefixes)

    @property
    def url_prefixes(self) -> tuple[str, ...]:
        """The normalised URL prefixes ingest may read from (empty: URLs are refused)."""
        return tuple(p for p in self.ingest_url_prefixes.split(",") if p)

    # -- derived values -------------------------------------------------------------------------
    @property
    def embedded(self) -> bool:
        """No Redis configured: use the server-less broker and serve stats from the database."""
        return self.redis_url is None

    @cached_property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'nhis.sqlite3').resolve()}"

    def redis_db_url(self, role: str) -> str:
        """Broker, results, cache and rate limits get consecutive logical DBs from REDIS_URL's index."""
        offset = {"broker": 0, "results": 1, "cache": 2, "ratelimit": 3}[role]
        if self.redis_url is None:
            raise RuntimeError("no REDIS_URL configured")
        parts = urlsplit(self.redis_url)
        base = int(parts.path.strip("/") or 0)
        return urlunsplit((parts.scheme, parts.netloc, f"/{base + offset}", parts.query, ""))

    @cached_property
    def rate_limit_table(self) -> dict[str, RateLimit]:
        """Limits per bucket (a scope, `any` for scope-free calls, `anonymous` per client address)."""
        return {**DEFAULT_RATE_LIMITS, **parse_rate_limits(self.rate_limits)}

    @property
    def is_mysql(self) -> bool:
        return make_url(self.sqlalchemy_url).get_backend_name() in ("mysql", "mariadb")


_ALIASES = {name: field.alias for name, field in Settings.model_fields.items()}


def load_settings(**overrides) -> Settings:
    """Build settings from env/.env plus overrides (by field name); one clear line on error."""
    try:
        return Settings(**{_ALIASES.get(k, k): v for k, v in overrides.items()})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        var = _ALIASES.get(field, field)
        raise SettingsError(f"configuration error: {var}: {err['msg']}") from None
    except Exception as exc:  # e.g. sqlalchemy ArgumentError raised inside a validator
        raise SettingsError(f"configuration error: {exc}") from None
