"""pandas wrapper of the numpy core, for the ETL: a chunk DataFrame in, a derived DataFrame out.

Output dtypes (one column per ``DERIVED_COLUMNS`` name, same index as the input):

* floats -> float64 with NaN; flags and boolean categories -> pandas nullable ``boolean``;
* counts -> int8;
* string categories -> ``pandas.Categorical`` with the table's fixed levels (built from codes,
  the cheapest option; ``.astype(object)`` gives str/None if a caller needs it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .table import CATEGORY_LEVELS, DERIVED_COLUMNS, DERIVED_KINDS
from .vector import ARRAY_INPUTS, evaluate_arrays

_CATEGORY_DTYPES = {c: pd.CategoricalDtype(list(levels)) for c, levels in CATEGORY_LEVELS.items()}


def _column(df: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in df.columns:
        return None
    return df[name].to_numpy(dtype=np.float64, na_value=np.nan)


def evaluate_frame(df: pd.DataFrame, cvd_model: str | None = None) -> pd.DataFrame:
    """Derived columns for every row of ``df`` (same index, columns in DERIVED_COLUMNS order)."""
    n = len(df)
    columns = {name: _column(df, name) for name in ARRAY_INPUTS}
    if all(v is None for v in columns.values()):
        columns["sex"] = np.full(n, np.nan)
    arrays = evaluate_arrays(columns, cvd_model)
    out: dict[str, object] = {}
    for col in DERIVED_COLUMNS:
        kind, arr = DERIVED_KINDS[col], arrays[col]
        if kind == "bool":
            out[col] = pd.arrays.BooleanArray(arr == 1, arr < 0)
        elif kind == "category":
            out[col] = pd.Categorical.from_codes(arr, dtype=_CATEGORY_DTYPES[col])
        else:
            out[col] = arr
    return pd.DataFrame(out, index=df.index, columns=list(DERIVED_COLUMNS))
