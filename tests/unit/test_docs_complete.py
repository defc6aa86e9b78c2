"""docs/DATA.md and docs/GUIDELINES.md hold, in our own words, everything the code relies on: every
column with its header spellings, codes, bounds and sentinels (shared/data/catalog.py), and every
rule threshold, label and source (shared/rules). A change in the code without the docs fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.data.catalog import COLUMNS, ColumnSpec
from shared.rules.equations import CVD_MODELS, DEFAULT_CVD_MODEL
from shared.rules.guidelines import GUIDELINES
from shared.rules.table import (
    ATP3_RULE,
    BAND_RULES,
    BP_RULE,
    COLUMN_GUIDELINE,
    DERIVED_COLUMNS,
    EXTRA_FLAG_RULES,
    FLAG_RULES,
    ISOLATED_SYSTOLIC_RULE,
    METS_RULE,
    RULE_VERSION,
    SCREENING_GROUP_RULE,
    CodeFlagRule,
    FlagRule,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"
DATA_MD = (DOCS / "DATA.md").read_text(encoding="utf-8")
GUIDELINES_MD = (DOCS / "GUIDELINES.md").read_text(encoding="utf-8")


def number_in(text: str, value: float) -> bool:
    """`value` written as a number in `text` (140, 18.5, 9,999,999,999), not as part of another."""
    spellings = {f"{value:g}"}
    if float(value).is_integer():
        spellings |= {str(int(value)), f"{int(value):,}"}
    return any(re.search(r"(?<![\d.,])" + re.escape(s) + r"(?![\d]|\.\d)", text) for s in spellings)


def data_row(column: str) -> str:
    rows = [line for line in DATA_MD.splitlines() if line.startswith("| ")
            and re.search(r"(?<!\w)" + re.escape(column) + r"(?!\w)", line.split("|")[1])]
    assert rows, f"docs/DATA.md has no row for column {column}"
    return rows[0]


@pytest.mark.parametrize("spec", COLUMNS, ids=lambda c: c.name)
def test_data_md_documents_every_column(spec: ColumnSpec):
    row = data_row(spec.name)
    missing_headers = [h for h in spec.headers if h not in row]
    assert missing_headers == [], f"{spec.name}: header spellings not in DATA.md: {missing_headers}"
    values = [*(spec.bounds or ()), *spec.sentinels, *spec.special_values, *spec.ceilings]
    codes = list(spec.codes or ())
    if codes and codes == list(range(int(codes[0]), int(codes[-1]) + 1)) and len(codes) > 8:
        values += [codes[0], codes[-1]]  # a long run of codes is documented by its rule and ends
    else:
        values += codes
    missing = [v for v in values if not number_in(row, v)]
    assert missing == [], f"{spec.name}: bounds/codes/sentinels not in its DATA.md row: {missing}"


def guideline_row(column: str) -> str:
    rows = [line for line in GUIDELINES_MD.splitlines() if line.startswith(f"| `{column}` |")]
    assert rows, f"docs/GUIDELINES.md has no table row for `{column}`"
    return rows[0]


def section(heading: str) -> str:
    start = GUIDELINES_MD.index(heading)
    rest = GUIDELINES_MD[start + len(heading):]
    end = re.search(r"\n#{2,4} ", rest)
    return rest[: end.start()] if end else rest


METS_SECTION = "### Metabolic syndrome"


@pytest.mark.parametrize("rule", [*FLAG_RULES, *EXTRA_FLAG_RULES, ISOLATED_SYSTOLIC_RULE], ids=lambda r: r.column)
def test_guidelines_md_states_every_flag_threshold(rule):
    text = section(METS_SECTION) if rule.column.startswith("mets_") else guideline_row(rule.column)
    if isinstance(rule, CodeFlagRule):
        assert all(number_in(text, code) for code in (*rule.true_codes, *rule.false_codes)), text
        return
    assert isinstance(rule, FlagRule) or rule is ISOLATED_SYSTOLIC_RULE
    for condition in rule.conditions:
        for value in {condition.threshold.male, condition.threshold.female}:
            assert re.search(re.escape(condition.op.value) + r"\s*" + f"{value:g}" + r"(?![\d])", text) or (
                condition.threshold.sex_specific and number_in(text, value)), \
                f"{rule.column}: '{condition.op.value} {value:g}' not in GUIDELINES.md: {text}"


@pytest.mark.parametrize("rule", BAND_RULES, ids=lambda r: r.column)
def test_guidelines_md_states_every_band(rule):
    row = guideline_row(rule.column)
    for cut in rule.cuts:
        for value in {cut.male, cut.female}:
            assert number_in(row, value), f"{rule.column}: cut {value:g} not in {row}"
    if rule.column != "proteinuria":  # its levels are described by the dataset codes
        for label in rule.labels:
            assert f"`{label}`" in row, f"{rule.column}: label {label} not in {row}"


def test_guidelines_md_states_the_blood_pressure_table():
    text = section("#### Blood pressure category")
    for cut, _rank in (*BP_RULE.sbp_steps, *BP_RULE.dbp_steps):
        assert number_in(text, cut), cut
    for label in BP_RULE.labels:
        assert f"`{label}`" in text


def test_guidelines_md_states_the_composite_rules():
    mets = section(METS_SECTION)
    assert f"≥ {METS_RULE.min_true} known components" in mets
    screening = section("#### `screening_risk_group`")
    assert f"≥ {SCREENING_GROUP_RULE.min_multiple} known true factors" in screening
    atp3 = section("#### `atp3_risk_category`")
    assert f"men ≥ {ATP3_RULE.age.male:g}" in atp3 and f"women ≥ {ATP3_RULE.age.female:g}" in atp3
    assert f"HDL ≥ {ATP3_RULE.negative.threshold.male:g}" in atp3
    for label in (*SCREENING_GROUP_RULE.labels, *ATP3_RULE.labels):
        assert f"`{label}`" in GUIDELINES_MD


def test_guidelines_md_states_the_cvd_model_ranges():
    model = CVD_MODELS[DEFAULT_CVD_MODEL]
    text = section("### 10-year CVD risk")
    assert model.ranges
    for r in model.ranges:
        assert number_in(text, r.lo) and number_in(text, r.hi), r


def test_every_derived_column_and_source_is_documented():
    undocumented = [c for c in DERIVED_COLUMNS if f"`{c}`" not in GUIDELINES_MD and not c.startswith("mets_")]
    assert undocumented == []
    sources = section("## Sources")
    keys = set(COLUMN_GUIDELINE.values()) | set(GUIDELINES)
    assert sorted(k for k in keys if f"`{k}`" not in sources) == []
    assert f"`{RULE_VERSION}`" in GUIDELINES_MD
