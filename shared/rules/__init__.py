"""Guideline rules for NHIS screening records: one table, a vectorised path (ETL) and a scalar path
(/simulate) that give the same answers. Pure Python + numpy/pandas: no Flask, Celery or DB here.

See docs/GUIDELINES.md for every threshold, its source and the caveats.
"""

from .equations import CVD_MODELS, DEFAULT_CVD_MODEL, CvdModel, register_cvd_model
from .evaluate import evaluate_frame
from .guidelines import DISCLAIMER, GUIDELINES, Guideline
from .person import evaluate_person
from .table import CATEGORY_LEVELS, DERIVED_COLUMNS, DERIVED_KINDS, RULE_VERSION

__all__ = [
    "CATEGORY_LEVELS",
    "CVD_MODELS",
    "DEFAULT_CVD_MODEL",
    "DERIVED_COLUMNS",
    "DERIVED_KINDS",
    "DISCLAIMER",
    "GUIDELINES",
    "RULE_VERSION",
    "CvdModel",
    "Guideline",
    "evaluate_frame",
    "evaluate_person",
    "register_cvd_model",
]
