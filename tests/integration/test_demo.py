"""`nhis demo` end to end in the embedded mode (no service needed): every step is printed, the
requests it suggests work, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.support.worker import wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_curl(command: str) -> tuple[int, dict]:
    """Run one of the printed curl commands with urllib (curl may not be installed): -X, -H, -d, URL."""
    args = shlex.split(command)
    assert args[0] == "curl"
    method, headers, data, url = "GET", {}, None, None
    i = 1
    while i < len(args):
        arg = args[i]
        if arg == "-s":
            pass
        elif arg == "-X":
            method, i = args[i + 1], i + 1
        elif arg == "-H":
            name, _, value = args[i + 1].partition(":")
            headers[name.strip()] = value.strip()
            i += 1
        elif arg == "-d":
            data, i = args[i + 1].encode(), i + 1
        else:
            assert url is None and arg.startswith("http://127.0.0.1:"), arg
            url = arg
        i += 1
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return response.status, json.loads(response.read())


class Output:
    """The demo's output, read by a thread as it comes."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc):
        for raw in proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.mark.timeout(420)
def test_demo_explains_itself_and_ctrl_c_leaves_no_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(NHIS_DATA_DIR=str(tmp_path), NHIS_CHUNK_ROWS="1000", PYTHONUNBUFFERED="1", LOG_FORMAT="json")
    port, flower_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "demo", "--rows", "3000", "--port", str(port),
         "--flower-port", str(flower_port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    out = Output(proc)
    tree: list[psutil.Process] = []
    try:
        def running():
            if proc.poll() is not None:
                raise AssertionError(f"demo exited with {proc.returncode}:\n{out.text}")
            return "NHIS screening backend is running" in out.text and "Ctrl-C stops every process" in out.text

        wait_until(running, 300, 0.5, "the demo's running banner")
        text = out.text
        # Every step, in order, each with its timing; the ingest loaded all 3,000 people.
        positions = [text.index(f"[{n}/7] ") for n in range(1, 8)]
        assert positions == sorted(positions)
        assert "job 1 succeeded: 3,000 rows loaded" in text
        assert "dataset 2024:job1" in text
        key = next(line.split()[-1] for line in out.lines if line.strip().startswith("demo key"))
        assert key.startswith("nhis_")

        # The three requests it suggests work as printed.
        commands = [line.strip() for line in out.lines if line.strip().startswith("curl -s ")]
        assert len(commands) == 3
        answers = [run_curl(c) for c in commands]
        assert [status for status, _ in answers] == [200, 200, 200]
        overview, person, records = (body for _, body in answers)
        assert overview["data"]["people"]["n"] == 3000
        assert person["rule_version"] and "flags" in person and "what_if" in person
        assert records["data"] and all(r["flags"]["hypertension"] is True for r in records["data"])

        # Every role is a process under the demo: collect the whole tree before the signal.
        tree = psutil.Process(proc.pid).children(recursive=True)
        commandlines = " ".join(" ".join(p.cmdline()) for p in tree)
        for role in ("gunicorn", "worker", "beat", "flower", "honcho"):
            assert role in commandlines, role
        assert len(tree) >= 8

        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground process
        assert proc.wait(timeout=120) == 0, out.text
        _gone, alive = psutil.wait_procs(tree, timeout=30)
        assert alive == [], [(p.pid, p.cmdline()) for p in alive]
        out.thread.join(timeout=10)
        assert "stopped: no process left" in out.text
        for p in (port, flower_port):  # and nothing listens on their ports any more
            with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
                sock.connect(("127.0.0.1", p))
    finally:
        for p in [*tree, psutil.Process(proc.pid) if proc.poll() is None else None]:
            if p is not None and p.is_running():
                p.kill()
