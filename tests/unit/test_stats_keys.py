"""The key format (one owner) and the light reading path: no pandas, pyarrow or numpy in the web
process's statistics modules."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shared.stats.keys import FilterError, latest_alias, payload_key, year_of


def test_payload_key_formats() -> None:
    assert payload_key("risk", 2024) == "risk:2024:all:all:all"
    assert payload_key("risk", "2024", 1, 5, "complete_panel") == "risk:2024:M:5:complete_panel"
    assert payload_key("factors", 2024, "f", "18") == "factors:2024:F:18:all"
    assert payload_key("region", "latest", "male", None, "all") == "region:latest:M:all:all"
    assert payload_key("overview", 2024, "all", "all") == "overview:2024:all:all"
    assert payload_key("age", 2024, "female") == "age:2024:F:all"
    assert payload_key("percentiles", 2024, 2, 9) == "percentiles:2024:F:9"
    assert payload_key("trends") == "trends"
    assert payload_key("trends", factor="flag_low_hdl") == "trends:flag_low_hdl"
    assert payload_key("years") == "years"


@pytest.mark.parametrize(("args", "kwargs", "field"), [
    (("overview", 2024, "M"), {}, "sex"),
    (("age", 2024, None, 5), {}, "age_group"),
    (("risk", 2024, "X"), {}, "sex"),
    (("risk", 2024, None, 19), {}, "age_group"),
    (("risk", 2024), {"population": "some"}, "population"),
    (("percentiles", 2024), {"population": "all"}, "population"),
    (("risk", 2024), {"factor": "flag_low_hdl"}, "factor"),
    (("trends", 2024), {}, "year"),
    (("trends",), {"factor": "DROP TABLE"}, "factor"),
    (("nope", 2024), {}, "endpoint"),
    (("risk", None), {}, "year"),
])
def test_filter_errors_name_the_field(args, kwargs, field) -> None:
    with pytest.raises(FilterError) as info:
        payload_key(*args, **kwargs)
    assert info.value.field == field


def test_latest_alias_and_year_of() -> None:
    assert latest_alias("risk:2024:M:5:all") == "risk:latest:M:5:all"
    assert latest_alias("overview:2024:all:all") == "overview:latest:all:all"
    assert latest_alias("trends:flag_low_hdl") == "trends:flag_low_hdl"
    assert latest_alias("years") == "years"
    assert year_of("risk:2024:M:5:all") == 2024
    assert year_of("risk:latest:M:5:all") is None and year_of("trends:anemia") is None


def test_reading_path_imports_no_pandas_pyarrow_or_numpy() -> None:
    code = ("import sys\n"
            "import shared.stats.keys, shared.stats.store, shared.stats.csv_export, shared.stats.peer\n"
            "heavy = sorted(m for m in ('pandas', 'pyarrow', 'numpy') if m in sys.modules)\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_store_table_clause_matches_the_model() -> None:
    from shared.db.models import StatsSnapshot
    from shared.stats.store import SNAPSHOTS

    model = StatsSnapshot.__table__.c
    for col in SNAPSHOTS.c:
        assert col.name in model, col.name
        assert col.type._type_affinity is model[col.name].type._type_affinity, col.name
    assert set(SNAPSHOTS.c.keys()) == set(model.keys()) - {"id"}
