"""Declarative models. The schema itself is owned by the Alembic migrations in shared/migrations."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.etl.states import ChunkStatus, JobPhase, JobStatus, VersionState
from shared.rules import CATEGORY_LEVELS, DERIVED_KINDS
from shared.rules.table import FLAG_RULES

ID_YEAR_FACTOR = 10**10  # subscriber ids are below 10**10 (shared/data/catalog.py bounds)


def screening_id(year, subscriber_id):
    """The record id: year and subscriber id in one BIGINT (works on ints and pandas Series)."""
    return year * ID_YEAR_FACTOR + subscriber_id


# BIGINT AUTO_INCREMENT on MySQL, INTEGER PRIMARY KEY (rowid) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Blob = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


# 4-byte FLOAT on MySQL (published values have at most 2 significant decimals; keeping a 1M-row
# year small keeps it in the buffer pool), REAL on SQLite.
Measure = Float().with_variant(mysql.FLOAT(), "mysql", "mariadb")


def category(name: str) -> Enum:
    """A 1-byte ENUM on MySQL/MariaDB (VARCHAR on SQLite) holding the rule table's levels."""
    return Enum(*CATEGORY_LEVELS[name], name=name, native_enum=True, create_constraint=False,
                validate_strings=False)


# Canonical measurement columns (shared/data/catalog.py owns their meaning) and their SQL types.
MEASUREMENT_COLUMNS: dict[str, type] = {
    "province": SmallInteger,  # canonical code: the same province under one code in every year
    "province_raw": SmallInteger,  # the code as published (Jeju 49 or 50, ...)
    "height_cm": Measure,
    "weight_kg": Measure,
    "waist_cm": Measure,
    "vision_left": Measure,
    "vision_right": Measure,
    "hearing_left": SmallInteger,
    "hearing_right": SmallInteger,
    "sbp": Measure,
    "dbp": Measure,
    "fasting_glucose": Measure,
    "total_cholesterol": Measure,
    "triglycerides": Measure,
    "hdl": Measure,
    "ldl": Measure,
    "hemoglobin": Measure,
    "urine_protein": SmallInteger,
    "creatinine": Measure,
    "ast": Measure,
    "alt": Measure,
    "ggt": Measure,
    "smoking": SmallInteger,
    "drinking": SmallInteger,
    "oral_exam": SmallInteger,
    "dental_caries": SmallInteger,
    "missing_teeth": SmallInteger,
    "tooth_wear": SmallInteger,
    "wisdom_tooth": SmallInteger,
    "tartar": SmallInteger,
}

# Derived values: shared/rules owns their names, kinds and category levels, so the columns are built
# from the rule table (shared.rules.DERIVED_COLUMNS / DERIVED_KINDS) and never listed twice.
FLAG_COLUMNS = tuple(rule.column for rule in FLAG_RULES)
_KIND_TYPES = {"float": Measure, "bool": Boolean, "int": SmallInteger}
DERIVED_SQL_TYPES: dict[str, object] = {
    name: category(name) if kind == "category" else _KIND_TYPES[kind] for name, kind in DERIVED_KINDS.items()
}


def _typed(sql_type) -> object:
    return sql_type() if isinstance(sql_type, type) else sql_type


# Core table (no ORM class): it is written in bulk by the ETL and read column-wise by the API.
screenings = Table(
    "screenings",
    Base.metadata,
    # Primary key (job_id, id): every job writes its own version of its year, one contiguous key
    # range, so a reload never touches the rows readers see, the swap is a pointer change
    # (year_versions) and an old version is deleted in cheap key-range batches.
    # id = year * 10**10 + subscriber_id: unique on (year, subscriber id), stable across reloads,
    # assigned by the ETL, so parallel LOAD DATA never contends for an AUTO_INCREMENT lock, and a
    # chunk loaded twice REPLACEs its own rows.
    Column("job_id", Integer, primary_key=True, autoincrement=False),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("year", SmallInteger, nullable=False),
    Column("subscriber_id", BigInteger, nullable=False),
    Column("sex", SmallInteger, nullable=False),
    Column("age_group", SmallInteger, nullable=False),
    *(Column(name, _typed(t)) for name, t in MEASUREMENT_COLUMNS.items()),
    Column("release_date", String(10)),
    *(Column(name, _typed(t)) for name, t in DERIVED_SQL_TYPES.items()),
    Column("rule_version", String(16), nullable=False),
    Column("chunk_index", Integer, nullable=False),
    Column("line_no", Integer, nullable=False),
    # Records pages filtered by a rare value (the oldest age band, the smallest province: ~0.7% of
    # a year) read ~140 rows per row shown on the primary key; these two make it one index range.
    # The other published filters are common enough for the key scan. Why these two and what each
    # costs the load: docs/DECISIONS.md.
    Index("ix_screenings_age_group", "job_id", "age_group", "id"),
    Index("ix_screenings_province", "job_id", "province", "id"),
)

SCREENING_DATA_COLUMNS = (
    "year", "subscriber_id", "sex", "age_group", *MEASUREMENT_COLUMNS, "release_date",
)


class EtlJob(Base):
    __tablename__ = "etl_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default=JobStatus.QUEUED)
    phase: Mapped[str] = mapped_column(String(16), nullable=False, default=JobPhase.QUEUED)
    # The job's year while it is queued or running, NULL once it ended: the unique index allows
    # one running job per year (a second one is refused with 409).
    active_year: Mapped[int | None] = mapped_column(SmallInteger)
    version_state: Mapped[str] = mapped_column(String(10), nullable=False, default=VersionState.LOADING)
    # sha256 of "<who>:<Idempotency-Key>" and of the request it came with (a retry returns the job)
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    api_key_id: Mapped[int | None] = mapped_column(Integer)  # the API key that created it (None: CLI)
    source_mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    upload: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    options: Mapped[str | None] = mapped_column(Text)  # JSON: what planning decided for the reader
    source_path: Mapped[str] = mapped_column(String(1024), nullable=False)
    original_filename: Mapped[str | None] = mapped_column(String(255))
    expected_year: Mapped[int | None] = mapped_column(SmallInteger)
    year: Mapped[int | None] = mapped_column(SmallInteger)
    encoding: Mapped[str | None] = mapped_column(String(16))
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    chunks_total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rows_total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rows_read: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rows_loaded: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cells_rejected: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    warnings: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    plan_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    planned_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    purged_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_etl_jobs_status", "status"),
        Index("ix_etl_jobs_version_state", "version_state"),
        UniqueConstraint("active_year", name="uq_etl_jobs_active_year"),
        UniqueConstraint("idempotency_key", name="uq_etl_jobs_idempotency_key"),
        Index("ix_etl_jobs_api_key_status", "api_key_id", "status"),  # the running-jobs cap per key
    )


class EtlChunk(Base):
    __tablename__ = "etl_chunks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("etl_jobs.id", ondelete="CASCADE"), nullable=False)
    chunk_index: Mapped[int] = mapped_column(Integer, nullable=False)
    byte_start: Mapped[int] = mapped_column(BigInteger, nullable=False)
    byte_end: Mapped[int] = mapped_column(BigInteger, nullable=False)
    first_line_no: Mapped[int] = mapped_column(Integer, nullable=False)
    n_lines: Mapped[int] = mapped_column(Integer, nullable=False)
    checksum: Mapped[int | None] = mapped_column(BigInteger)  # crc32 of the range at planning
    oversized: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)  # one over-long line
    status: Mapped[str] = mapped_column(String(12), nullable=False, default=ChunkStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # claims, counted at claim
    worker: Mapped[str | None] = mapped_column(String(255))  # Celery node name of the last claim
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    rows_loaded: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cells_rejected: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    seconds: Mapped[float | None] = mapped_column(Double)
    timings: Mapped[str | None] = mapped_column(Text)  # JSON: seconds per phase of the last run
    years: Mapped[str | None] = mapped_column(String(64))  # comma-separated years loaded by the chunk
    error: Mapped[str | None] = mapped_column(Text)
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        UniqueConstraint("job_id", "chunk_index", name="uq_etl_chunks_job_index"),
        Index("ix_etl_chunks_status", "status"),
    )


class EtlReject(Base):
    __tablename__ = "etl_rejects"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(Integer, nullable=False)
    chunk_index: Mapped[int] = mapped_column(Integer, nullable=False)
    line_no: Mapped[int] = mapped_column(Integer, nullable=False)
    column_name: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(255), nullable=False)
    raw_value: Mapped[str | None] = mapped_column(String(255))
    whole_row: Mapped[bool] = mapped_column(Boolean, nullable=False)

    __table_args__ = (Index("ix_etl_rejects_job_chunk_line", "job_id", "chunk_index", "line_no"),)


class EtlDuplicate(Base):
    """A line whose subscriber id appeared earlier in the same file (found at planning)."""

    __tablename__ = "etl_duplicates"

    job_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_line_no: Mapped[int] = mapped_column(Integer, nullable=False)


class YearVersion(Base):
    """The pointer to the current version (the job whose rows readers see) of each year."""

    __tablename__ = "year_versions"

    year: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    job_id: Mapped[int] = mapped_column(Integer, nullable=False)
    activated_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class StatsPartial(Base):
    """A chunk's partial statistics (shared/stats/aggregate.py); a refresh merges them per year."""

    __tablename__ = "stats_partials"

    job_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chunk_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    payload: Mapped[bytes] = mapped_column(Blob, nullable=False)


class StatsSnapshot(Base):
    """Ready-to-send statistics payloads; the fallback when Redis is down or empty."""

    __tablename__ = "stats_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    generation: Mapped[int] = mapped_column(BigInteger, nullable=False)
    key: Mapped[str] = mapped_column(String(128), nullable=False)
    payload: Mapped[bytes] = mapped_column(Blob, nullable=False)
    dataset_version: Mapped[str] = mapped_column(Text, nullable=False)  # grows with the years loaded
    rule_version: Mapped[str] = mapped_column(String(16), nullable=False)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)

    __table_args__ = (
        UniqueConstraint("generation", "key", name="uq_stats_snapshots_generation_key"),
        Index("ix_stats_snapshots_key", "key"),
    )


class ApiKey(Base):
    """Only a SHA-256 of the key is stored; the clear key is shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    scopes: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class AuditLog(Base):
    """One row per read of person-level data through the API: who, which route, which filters,
    how many records, when (`nhis audit` prints it). Never the records themselves."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    api_key_id: Mapped[int | None] = mapped_column(Integer)
    key_name: Mapped[str | None] = mapped_column(String(64))
    route: Mapped[str] = mapped_column(String(128), nullable=False)
    filters: Mapped[str | None] = mapped_column(Text)  # JSON of the query the caller sent
    result_count: Mapped[int] = mapped_column(Integer, nullable=False)
    request_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_key_at", "api_key_id", "at"),
    )
