"""Typed settings built from the environment and `.env`.

`load_settings()` is called by the factories (Flask app, Celery app, CLI), never at import, so
tests and tools can build settings for any environment without touching `os.environ` first.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url


class SettingsError(RuntimeError):
    """A bad configuration value; the message is one line naming the variable."""


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
    reaper_seconds: int = Field(default=30, ge=1, alias="NHIS_REAPER_SECONDS")
    upload_max_mb: int = Field(default=1024, ge=1, alias="NHIS_UPLOAD_MAX_MB")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    log_format: str = Field(default="json", pattern="^(json|console)$", alias="LOG_FORMAT")
    flower_basic_auth: str = Field(default="admin:change-me", alias="FLOWER_BASIC_AUTH")

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
