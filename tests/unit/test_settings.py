import pytest

from shared.config import SettingsError, load_settings


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"redis_url": "http://localhost:6379"}, "REDIS_URL"),
        ({"redis_url": "redis://localhost:notaport/0"}, "REDIS_URL"),
        ({"redis_url": "redis://localhost:6379/15"}, "REDIS_URL"),
        ({"database_url": "postgresql://x@y/z"}, "DATABASE_URL"),
        ({"database_url": "not a url at all"}, "DATABASE_URL"),
        ({"small_cell_min": "eleven"}, "NHIS_SMALL_CELL_MIN"),
        ({"small_cell_min": 0}, "NHIS_SMALL_CELL_MIN"),
        ({"percentile_min_n": 20}, "NHIS_PERCENTILE_MIN_N"),
        ({"chunk_rows": 5}, "NHIS_CHUNK_ROWS"),
    ],
)
def test_bad_value_names_the_variable_in_one_line(overrides, variable):
    with pytest.raises(SettingsError) as info:
        load_settings(**overrides)
    message = str(info.value)
    assert variable in message
    assert "\n" not in message


def test_bad_environment_variable_is_reported(monkeypatch):
    monkeypatch.setenv("NHIS_SMALL_CELL_MIN", "x")
    with pytest.raises(SettingsError, match="NHIS_SMALL_CELL_MIN"):
        load_settings()


def test_embedded_default_uses_sqlite_under_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = load_settings(data_dir=tmp_path)
    assert settings.embedded
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path.resolve() / 'nhis.sqlite3'}"


def test_redis_roles_get_consecutive_logical_databases():
    settings = load_settings(redis_url="redis://127.0.0.1:6379/4")
    assert [settings.redis_db_url(r) for r in ("broker", "results", "cache", "ratelimit")] == [
        "redis://127.0.0.1:6379/4",
        "redis://127.0.0.1:6379/5",
        "redis://127.0.0.1:6379/6",
        "redis://127.0.0.1:6379/7",
    ]


def test_importing_the_modules_reads_no_settings(monkeypatch):
    """A broken environment must not break imports: only the factories read settings."""
    import importlib

    import api
    import shared.config

    monkeypatch.setenv("REDIS_URL", "http://broken")
    importlib.reload(shared.config)
    importlib.reload(api)
    with pytest.raises(shared.config.SettingsError, match="REDIS_URL"):
        shared.config.load_settings()
