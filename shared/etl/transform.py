"""Pure transform of one chunk: canonical frame in, frame with every derived value out."""

from __future__ import annotations

import pandas as pd

from shared.rules import RULE_VERSION, evaluate_frame


def derive(frame: pd.DataFrame) -> pd.DataFrame:
    """Append the rule table's derived columns and the rule version (no IO)."""
    derived = evaluate_frame(frame)
    out = pd.concat([frame, derived], axis=1)
    out["rule_version"] = RULE_VERSION
    return out
