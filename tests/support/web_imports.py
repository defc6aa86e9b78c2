"""Run in a fresh interpreter: build the web app, send one request of each route family, and print
(as JSON) which heavy modules each step loaded and through which project modules they came.

    python -m tests.support.web_imports   (env: DATABASE_URL, REDIS_URL, NHIS_DATA_DIR,
                                           NHIS_METRICS_TOKEN, PROBE_KEY, PROBE_YEAR, PROBE_RECORD_ID)

tests/integration/test_web_imports.py runs it; it is also a tool for finding what pulls a module in.
"""

from __future__ import annotations

import importlib.abc
import json
import os
import sys
import traceback

HEAVY = ("pandas", "pyarrow", "numpy", "celery", "kombu")
PROJECT = ("api", "shared", "workers")


class ImportWitness(importlib.abc.MetaPathFinder):
    """Records, for the first import of each heavy top-level module, the project frames that asked."""

    def __init__(self):
        self.chains: dict[str, list[str]] = {}

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top in HEAVY and top not in self.chains:
            frames = []
            for frame in traceback.extract_stack()[:-1]:
                module = _project_module(frame.filename)
                if module:
                    frames.append(f"{module}:{frame.lineno}")
            self.chains[top] = frames
        return None  # never load anything itself: the normal finders do


def _project_module(filename: str) -> str | None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if not filename.startswith(root + os.sep) or ".venv" in filename:
        return None
    rel = os.path.relpath(filename, root)
    top = rel.split(os.sep)[0]
    return rel if top in PROJECT else None


def loaded() -> list[str]:
    return sorted(name for name in HEAVY if name in sys.modules)


def main() -> None:
    witness = ImportWitness()
    sys.meta_path.insert(0, witness)
    steps: dict[str, dict] = {}

    from api import create_app

    app = create_app()
    steps["create_app"] = {"loaded": loaded(), "status": []}
    key, year, record = os.environ["PROBE_KEY"], os.environ["PROBE_YEAR"], os.environ["PROBE_RECORD_ID"]
    auth = {"X-API-Key": key}
    person = {"sex": "M", "age": 52, "height_cm": 171, "weight_kg": 80, "sbp": 142, "dbp": 91,
              "fasting_glucose": 105, "total_cholesterol": 213, "hdl": 50, "smoking": "never"}
    client = app.test_client()
    families = [  # the batch last: numpy may load there, and only there
        ("health", [("GET", "/health", {})]),
        ("ready", [("GET", "/ready", {})]),
        ("stats", [("GET", "/api/v1/stats/risk", {"headers": auth}),  # Flask route, caches the key
                   ("GET", "/api/v1/stats/risk", {"headers": auth}),  # then the fast path
                   ("GET", "/api/v1/stats/factors", {"headers": auth, "query_string": {"year": year}}),
                   ("GET", "/api/v1/stats/overview", {"headers": auth})]),
        ("records", [("GET", "/api/v1/records", {"headers": auth, "query_string": {"year": year, "limit": 5}}),
                     ("GET", f"/api/v1/records/{record}", {"headers": auth})]),
        ("simulate", [("POST", "/api/v1/simulate", {"headers": auth, "json": person}),
                      ("POST", "/api/v1/simulate", {"headers": auth, "json": person,
                                                    "query_string": {"include": "what_if,explanations"}})]),
        ("keys", [("GET", "/api/v1/auth/whoami", {"headers": auth})]),
        ("etl_list", [("GET", "/api/v1/etl/jobs", {"headers": auth})]),
        ("metrics", [("GET", "/metrics", {"headers": {"Authorization": f"Bearer {os.environ['NHIS_METRICS_TOKEN']}"}})]),
        ("batch", [("POST", "/api/v1/simulate/batch", {"headers": auth, "json": {"people": [person] * 3}})]),
    ]
    for family, requests in families:
        statuses = []
        for method, path, kwargs in requests:
            response = client.open(path, method=method, **kwargs)
            statuses.append(response.status_code)
        steps[family] = {"loaded": loaded(), "status": statuses}
    print(json.dumps({"steps": steps, "chains": witness.chains}))


if __name__ == "__main__":
    main()
