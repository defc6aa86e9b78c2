"""Liveness task: proves a task sent by name from a producer runs on a real worker."""

import os
import socket

from shared import task_names
from workers.celery_app import app


@app.task(name=task_names.SYSTEM_PING, ignore_result=False)
def ping(payload: str = "ping") -> dict:
    return {"reply": payload, "hostname": socket.gethostname(), "pid": os.getpid()}
