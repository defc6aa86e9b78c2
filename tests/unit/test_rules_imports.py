"""The web process imports shared.rules: it must not drag in the data stack.

Each check runs in a fresh interpreter, so modules other tests loaded cannot hide an import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pandas", "pyarrow", "numpy")


def loaded_after(code: str) -> dict[str, bool]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {list(HEAVY)!r}}}))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_rules_and_simulating_one_person_loads_no_data_stack():
    loaded = loaded_after(
        "import shared.rules\n"
        "from shared.rules import evaluate_person\n"
        "r = evaluate_person({'sex': 'M', 'age': 50, 'sbp': 150, 'dbp': 95, 'hdl': 45, 'total_cholesterol': 230,"
        " 'fasting_glucose': 100, 'smoking': 'current'})\n"
        "assert r['cvd_10y']['percent'] is not None and r['what_if'] and r['explanations']"
    )
    assert loaded == {"pandas": False, "pyarrow": False, "numpy": False}


def test_the_numpy_core_loads_numpy_but_not_pandas():
    loaded = loaded_after(
        "from shared.rules import evaluate_batch\n"
        "assert evaluate_batch([{'sex': 'F', 'age_group': 12, 'sbp': 150}])[0]['flags']['hypertension'] is True"
    )
    assert loaded == {"pandas": False, "pyarrow": False, "numpy": True}


def test_evaluate_frame_is_still_importable_by_name():
    loaded = loaded_after("from shared.rules import evaluate_frame\nassert callable(evaluate_frame)")
    assert loaded["pandas"] is True
