"""An isolated system for fault tests: its own MariaDB database, its own redis-server, its own
worker and beat processes, so killing any of them (or cutting the database) disturbs nothing else
and nothing else can finish a job for it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.cli.db import upgrade
from shared.config import load_settings
from shared.resources import Resources
from tests.support import services
from tests.support.private_redis import PrivateRedis
from tests.support.tcpproxy import TcpProxy
from tests.support.worker import BeatProcess, WorkerProcess


class IsolatedSystem:
    """`env` is what every process of the system gets; `resources` is the test's own handle.

    `settings` overrides go to the processes as environment variables and to the test's handle;
    with `db_proxy=True` every process reaches MariaDB through a TcpProxy the test can cut.
    """

    def __init__(self, tmp_path: Path, db_proxy: bool = False, **settings):
        self.tmp_path = tmp_path
        tmp_path.mkdir(parents=True, exist_ok=True)
        base = services.mysql_database_url().rsplit("/", 1)[0]
        self.db_name = "nhis_iso_" + services.unique_name("x").split("-")[1]
        self.server = create_engine(base + "/")
        with self.server.begin() as conn:
            conn.execute(text(f"CREATE DATABASE `{self.db_name}`"))
        self.proxy = None
        url = make_url(f"{base}/{self.db_name}")
        if db_proxy:
            self.proxy = TcpProxy(url.host or "127.0.0.1", url.port or 3306).start()
            url = url.set(host="127.0.0.1", port=self.proxy.port)
        self.redis = PrivateRedis(tmp_path).start()
        database_url = url.render_as_string(hide_password=False)
        self.env = {
            "DATABASE_URL": database_url, "REDIS_URL": f"redis://127.0.0.1:{self.redis.port}/0",
            "NHIS_DATA_DIR": str(tmp_path / "data"), "LOG_FORMAT": "json",
            **{f"NHIS_{k.upper()}": str(v) for k, v in settings.items()},
        }
        self.resources = Resources(load_settings(
            database_url=database_url, redis_url=self.env["REDIS_URL"], data_dir=self.env["NHIS_DATA_DIR"],
            **settings,
        ))
        upgrade(self.resources.engine)
        self.procs: list = []

    def worker(self, name: str, concurrency: int = 1, node: str | None = None, **kwargs) -> WorkerProcess:
        """A worker logging to `<name>.log`; `node` is its Celery node name (default: a random one)."""
        proc = WorkerProcess({**self.env, **kwargs.pop("env", {})}, concurrency=concurrency,
                             log_path=self.tmp_path / f"{name}.log", name=node, **kwargs)
        self.procs.append(proc)
        return proc.start(self.resources.producer)

    def beat(self) -> BeatProcess:
        proc = BeatProcess(self.env, self.tmp_path / "schedule", log_path=self.tmp_path / "beat.log").start()
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            proc.stop()
        if self.proxy is not None:
            self.proxy.stop()
        self.redis.kill()
        self.resources.dispose()
        with self.server.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{self.db_name}`"))
        self.server.dispose()
