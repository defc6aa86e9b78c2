"""Start real Celery worker (and beat) processes for integration tests; no eager mode."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CELERY = [sys.executable, "-m", "celery", "-A", "workers.celery_app"]


def wait_until(predicate, timeout: float, interval: float = 0.1, message: str = "condition"):
    """Poll predicate until it returns a truthy value; fail after timeout (never a bare sleep)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # e.g. connection refused while a service starts
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {message} (last error: {last_exc})")


class WorkerProcess:
    """One `celery worker` process group, started with the given environment."""

    def __init__(self, env: dict, concurrency: int = 2, queues: str = "etl,stats", log_path: Path | None = None,
                 include: str | None = None, name: str | None = None):
        self.name = name or f"test-{uuid.uuid4().hex[:8]}@localhost"
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.concurrency = concurrency
        self.queues = queues
        self.log_path = log_path
        self.include = include  # extra modules the worker imports (test fault injection)
        self.proc: subprocess.Popen | None = None

    def start(self, producer, timeout: float = 60) -> WorkerProcess:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [*CELERY, "worker", "-Q", self.queues, "--concurrency", str(self.concurrency),
             "-n", self.name, "--without-mingle", "--without-gossip", "-E", "--loglevel", "INFO",
             *(["-I", self.include] if self.include else [])],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_until(lambda: self._answers(producer), timeout, 0.5, f"worker {self.name} to answer ping")
        return self

    def _answers(self, producer) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited with {self.proc.returncode}; see {self.log_path}")
        replies = producer.control.ping(destination=[self.name], timeout=1.5) or []
        return any(self.name in reply for reply in replies)

    def child_pids(self) -> list[int]:
        import psutil

        return [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]

    def kill(self) -> None:
        """SIGKILL the whole process group: the worker dies mid-task with no chance to clean up."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


class BeatProcess:
    def __init__(self, env: dict, schedule_path: Path, log_path: Path | None = None):
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.schedule_path = schedule_path
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> BeatProcess:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [*CELERY, "beat", "--schedule", str(self.schedule_path), "--loglevel", "INFO"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
