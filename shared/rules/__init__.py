"""Guideline rules for NHIS screening records: one rule table, a scalar path (/simulate) and a
numpy core (ETL through a pandas wrapper, /simulate/batch directly) that give the same answers.
No Flask, Celery or database here.

Importing this package loads neither numpy nor pandas (the web process imports it): the numpy
core (``evaluate_arrays``, ``evaluate_batch``) and the pandas wrapper (``evaluate_frame``) are
imported on first use. Modules: ``table`` (the rules as data), ``equations``, ``scalar`` (one
person), ``whatif``, ``explain``, ``layout`` (the response layout), ``vector`` (numpy core),
``batch`` and ``frame``.

See docs/GUIDELINES.md for every threshold, its source and the caveats.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .equations import CVD_MODELS, DEFAULT_CVD_MODEL, CvdModel, register_cvd_model
from .guidelines import DISCLAIMER, GUIDELINES, Guideline
from .layout import INCLUDES, evaluate_person
from .table import CATEGORY_LEVELS, DERIVED_COLUMNS, DERIVED_KINDS, RULE_INPUTS, RULE_VERSION

_LAZY = {"evaluate_frame": ".frame", "evaluate_arrays": ".vector", "evaluate_batch": ".batch"}


def __getattr__(name: str) -> Any:
    """``evaluate_frame`` (pandas), ``evaluate_arrays`` and ``evaluate_batch`` (numpy) on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CATEGORY_LEVELS",
    "CVD_MODELS",
    "DEFAULT_CVD_MODEL",
    "DERIVED_COLUMNS",
    "DERIVED_KINDS",
    "DISCLAIMER",
    "GUIDELINES",
    "INCLUDES",
    "RULE_INPUTS",
    "RULE_VERSION",
    "CvdModel",
    "Guideline",
    "evaluate_arrays",
    "evaluate_batch",
    "evaluate_frame",
    "evaluate_person",
    "register_cvd_model",
]
