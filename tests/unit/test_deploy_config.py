"""Deployment hygiene: Flower credentials never on argv and never the old default; the web role
honours PORT; connection roles give LOCAL INFILE to workers only."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from shared.config import load_settings
from shared.db.engine import mysql_connect_args

ROOT = Path(__file__).resolve().parents[2]


def flower_conf(monkeypatch, **env):
    for name in ("FLOWER_BASIC_AUTH", "FLOWER_BASIC_AUTH_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "flowerconfig.py"))


@pytest.mark.parametrize("value", [None, "admin:change-me", "admin:short", "nopassword"])
def test_flower_refuses_missing_default_or_weak_credentials(monkeypatch, value):
    with pytest.raises(SystemExit):
        flower_conf(monkeypatch, **({"FLOWER_BASIC_AUTH": value} if value else {}))


def test_flower_reads_credentials_from_the_environment_or_a_file(monkeypatch, tmp_path):
    assert flower_conf(monkeypatch, FLOWER_BASIC_AUTH="ops:a-long-secret-1")["basic_auth"] == ["ops:a-long-secret-1"]
    secret = tmp_path / "flower-auth"
    secret.write_text("ops:from-a-file-secret\n")
    assert flower_conf(monkeypatch, FLOWER_BASIC_AUTH_FILE=str(secret))["basic_auth"] == ["ops:from-a-file-secret"]


def test_no_role_passes_flower_credentials_on_the_command_line():
    for name in ("Procfile", "docker-compose.yml"):
        text = (ROOT / name).read_text()
        assert "--basic-auth" not in text and "change-me" not in text.split("MYSQL_ROOT_PASSWORD")[0], name
    assert "--conf=flowerconfig.py" in (ROOT / "Procfile").read_text()


def gunicorn_conf(monkeypatch, folder, **env):
    """Read gunicorn.conf.py as a new master would (its metrics folder and marker restored after)."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    monkeypatch.setenv("NHIS_METRICS_MASTER_PID", "0")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_web_role_honours_port(monkeypatch, tmp_path):
    monkeypatch.delenv("WEB_BIND", raising=False)
    assert gunicorn_conf(monkeypatch, tmp_path, PORT="5123")["bind"] == "0.0.0.0:5123"
    assert gunicorn_conf(monkeypatch, tmp_path, WEB_BIND="127.0.0.1:9000")["bind"] == "127.0.0.1:9000"


def test_web_role_preloads_and_recycles_for_memory_with_a_jittered_backstop(monkeypatch, tmp_path):
    conf = gunicorn_conf(monkeypatch, tmp_path)
    assert conf["preload_app"] is True and conf["control_socket_disable"] is True
    assert conf["max_requests"] >= 100_000 and conf["max_requests_jitter"] == conf["max_requests"] // 2
    assert conf["max_worker_memory_mb"] > 0
    assert not gunicorn_conf(monkeypatch, tmp_path, WEB_PRELOAD="0")["preload_app"]


def test_metrics_folder_is_emptied_when_a_master_starts_and_kept_when_it_rereads(monkeypatch, tmp_path):
    import os

    stale, other = tmp_path / "counter_123.db", tmp_path / "keep.txt"
    stale.write_bytes(b"x")
    other.write_text("not ours")
    gunicorn_conf(monkeypatch, tmp_path)
    assert not stale.exists() and other.exists()  # only the metric files go
    assert os.environ["NHIS_METRICS_MASTER_PID"] == str(os.getpid())
    live = tmp_path / "histogram_456.db"
    live.write_bytes(b"x")
    runpy.run_path(str(ROOT / "gunicorn.conf.py"))  # a HUP: same master, live workers' files stay
    assert live.exists()


def test_only_worker_connections_get_local_infile_and_the_api_gets_short_timeouts():
    settings = load_settings(database_url="mysql+pymysql://u@h/db")
    api, worker, cli = (mysql_connect_args(settings, role) for role in ("api", "worker", "cli"))
    assert (api["local_infile"], worker["local_infile"], cli["local_infile"]) == (False, True, False)
    assert api["connect_timeout"] == settings.db_connect_timeout_seconds < 2
    assert api["read_timeout"] == settings.db_read_timeout_seconds > settings.db_statement_timeout_seconds
    assert worker["read_timeout"] == settings.db_worker_read_timeout_seconds
    with pytest.raises(ValueError):
        mysql_connect_args(settings, "web")


def test_only_a_worker_leaving_normally_skips_the_interpreter_teardown(monkeypatch, tmp_path):
    import logging
    import os
    import sys
    import types

    conf = gunicorn_conf(monkeypatch, tmp_path)
    exits, closed = [], []
    monkeypatch.setattr(os, "_exit", exits.append)
    monkeypatch.setattr(logging, "shutdown", lambda: None)
    monkeypatch.setitem(sys.modules, "api.wsgi", types.SimpleNamespace(before_exit=lambda: closed.append(1)))

    def leave(booted: bool, alive: bool) -> None:
        conf["worker_exit"](None, types.SimpleNamespace(booted=booted, alive=alive))

    leave(booted=True, alive=True)  # the loop ended on an error: Gunicorn exits with its own code
    leave(booted=False, alive=False)  # never booted (WORKER_BOOT_ERROR must reach the master)
    assert exits == [] and closed == []
    leave(booted=True, alive=False)  # replaced, or the server stopping
    assert exits == [0] and closed == [1]  # connections closed first


WORKER_BOOT = """
import os, runpy, signal, sys, types
conf = runpy.run_path(sys.argv[1])
heard = []
signal.signal(signal.SIGTERM, lambda *_: heard.append("master's handler"))  # inherited over the fork
conf["post_fork"](None, None)
os.kill(os.getpid(), signal.SIGTERM)  # a deploy's stop, while the worker is still booting
worker = types.SimpleNamespace(alive=True)
def handle_exit(*_):  # Gunicorn's Worker.handle_exit, installed by init_signals after post_fork
    heard.append("worker's handler")
    worker.alive = False
signal.signal(signal.SIGTERM, handle_exit)
conf["post_worker_init"](worker)
print(",".join(heard), worker.alive)
"""


def test_a_stop_signal_sent_while_a_worker_boots_reaches_the_worker(tmp_path):
    """Sent between the fork and Gunicorn's own handlers, a SIGTERM would run the master's handler
    in the worker and be lost (the master then waits 30 s); it is held back and handled once the
    worker's handlers are in place."""
    import subprocess
    import sys

    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "NHIS_METRICS_MASTER_PID": "0"}
    done = subprocess.run([sys.executable, "-c", WORKER_BOOT, str(ROOT / "gunicorn.conf.py")], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["worker's", "handler", "False"]
