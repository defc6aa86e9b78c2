"""Pure transform of one chunk: canonical frame in, frame ready for the screenings table out."""

from __future__ import annotations

import pandas as pd

from shared.db.models import screening_id
from shared.rules import RULE_VERSION, evaluate_frame


def derive(frame: pd.DataFrame, job_id: int, chunk_index: int) -> pd.DataFrame:
    """Append the rule table's derived columns, the rule version and the row's keys (no IO).

    The record id (year and subscriber id in one number) is assigned here, with the job (the
    version the rows belong to), so every writer gets the same keys for the same input.
    """
    derived = evaluate_frame(frame)
    out = pd.concat([frame, derived], axis=1)
    out["rule_version"] = RULE_VERSION
    out["id"] = screening_id(out["year"], out["subscriber_id"])
    out["job_id"] = job_id
    out["chunk_index"] = chunk_index
    return out
