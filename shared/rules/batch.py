"""Many people at once through the numpy core, laid out exactly like one person's response.

``evaluate_batch(people)`` equals ``[person_response(evaluate_scalar(p)) for p in people]``
(tests/unit/test_rules_property.py checks it) but evaluates every rule once per column instead of
once per person. Input normalisation and the reasons for null values reuse the scalar helpers,
so both paths read a person the same way. Imports numpy: load it lazily from the web process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .equations import egfr_reason
from .layout import assemble
from .scalar import age_label, cvd_inputs, model_of, read_age, read_inputs, sex_code
from .table import CATEGORY_LEVELS, DERIVED_COLUMNS, DERIVED_KINDS, NUMERIC_INPUTS
from .vector import evaluate_arrays

_TRI = (False, True, None)  # int8 code -> value; index -1 is None


def _array(values: list[float | int | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _python(column: str, arr: np.ndarray) -> list[Any]:
    """An output array as plain Python values, None for unknown."""
    kind = DERIVED_KINDS[column]
    values = arr.tolist()
    if kind == "float":
        return [None if v != v else v for v in values]
    if kind == "bool":
        return [_TRI[v] for v in values]
    if kind == "category":
        labels = (*CATEGORY_LEVELS[column], None)
        return [labels[v] for v in values]
    return values


def evaluate_batch(people: Sequence[Mapping[str, Any]], cvd_model: str | None = None) -> list[dict[str, Any]]:
    """The default response (no what-if, no explanations) of each person, in input order."""
    if not people:
        return []
    model_key, model = model_of(cvd_model)
    xs = [read_inputs(p) for p in people]
    sexes = [sex_code(p.get("sex")) for p in people]
    ages = [read_age(p) for p in people]
    columns: dict[str, np.ndarray] = {name: _array([x[name] for x in xs]) for name in NUMERIC_INPUTS}
    columns["sex"] = _array(sexes)
    columns["age_group"] = _array([a.age_group for a in ages])
    columns["age"] = _array([a.years if a.source == "exact" else None for a in ages])
    arrays = evaluate_arrays(columns, model_key)
    rows = zip(*(_python(c, arrays[c]) for c in DERIVED_COLUMNS), strict=True)
    out = []
    for x, sex, age, row in zip(xs, sexes, ages, rows, strict=True):
        d = dict(zip(DERIVED_COLUMNS, row, strict=True))
        cvd_why = None if d["cvd_10y"] is not None else model.risk_one(cvd_inputs(x, d, sex, age.years))[1]
        male = None if sex is None else sex == 1
        egfr_why = None if d["egfr"] is not None else egfr_reason(x["creatinine"], male, age.first, age_label(age))
        out.append(assemble(d, cvd_why, egfr_why, model_key, age))
    return out
