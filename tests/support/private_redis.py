"""A redis-server of the test's own, so stopping it disturbs no other test or developer."""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest
import redis

from tests.support.worker import wait_until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of our own (no persistence), so killing it disturbs nothing else."""

    def __init__(self, folder):
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is needed for the fault tests")
        self.port = _free_port()
        self.folder = folder
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: redis.Redis(port=self.port).ping(), 30, 0.1, "private redis")
        return self

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
