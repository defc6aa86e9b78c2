"""The guideline rule table, as data. Every evaluator (scalar, numpy core) reads these objects.

Every threshold sits here once, next to the guideline key it comes from (``guidelines.py`` holds
the citations). Semantics shared by all paths:

* a value is *known* when it is a finite number (NaN / None / inf are unknown);
* a sex-specific threshold is unknown when sex is unknown (sex code not 1 or 2);
* band rules: ``value < cuts[0]`` -> ``labels[0]``; ``cuts[i-1] <= value < cuts[i]`` -> ``labels[i]``;
* flag rules are a tri-state OR of their conditions: true if any known condition holds, false only
  if every condition is known and none holds, otherwise null (unknown) - never false by default;
* "all of" rules are the tri-state AND: true only if every condition is known and holds, false as
  soon as one known condition fails, otherwise null.

This module imports nothing heavy (no numpy, no pandas): the web process reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .equations import CVD_MODELS, DEFAULT_CVD_MODEL

RULE_VERSION = "2026.11.2"
"""Bumped (YYYY.MM.N) whenever a threshold, label or equation changes; stored with every result."""


class Op(StrEnum):
    """Comparison of a measured value against a threshold (``value OP threshold`` = condition met)."""

    GE = "≥"
    GT = ">"
    LT = "<"
    LE = "≤"


@dataclass(frozen=True, slots=True)
class Threshold:
    """A cut point; sex-specific when the guideline is (``male`` != ``female``)."""

    male: float
    female: float

    @property
    def sex_specific(self) -> bool:
        return self.male != self.female

    def text(self, male: bool | None) -> str:
        if not self.sex_specific:
            return f"{self.male:g}"
        if male is None:
            return f"{self.male:g} (men) / {self.female:g} (women)"
        return f"{self.male if male else self.female:g}"


def at(value: float, female: float | None = None) -> Threshold:
    """Threshold shorthand: ``at(90, female=85)``."""
    return Threshold(float(value), float(value if female is None else female))


@dataclass(frozen=True, slots=True)
class InputSpec:
    """A measured input: display label, unit, grid step of what-if targets, display format."""

    label: str
    unit: str
    step: float = 1.0
    modifiable: bool = False
    fmt: str = "g"


# Canonical inputs (the reader's column names, docs/DATA.md). ``step`` = resolution of what-if targets.
INPUTS: dict[str, InputSpec] = {
    "height_cm": InputSpec("Height", "cm"),
    "weight_kg": InputSpec("Weight", "kg", 0.1, True),
    "waist_cm": InputSpec("Waist", "cm", 0.1, True),
    "sbp": InputSpec("SBP", "mmHg", 1.0, True),
    "dbp": InputSpec("DBP", "mmHg", 1.0, True),
    "fasting_glucose": InputSpec("FPG", "mg/dL", 1.0, True),
    "total_cholesterol": InputSpec("TC", "mg/dL", 1.0, True),
    "triglycerides": InputSpec("TG", "mg/dL", 1.0, True),
    "hdl": InputSpec("HDL", "mg/dL", 1.0, True),
    "ldl": InputSpec("LDL", "mg/dL"),
    "hemoglobin": InputSpec("Hb", "g/dL", 0.1),
    "creatinine": InputSpec("Creatinine", "mg/dL", 0.1),
    "ast": InputSpec("AST", "IU/L"),
    "alt": InputSpec("ALT", "IU/L"),
    "ggt": InputSpec("GGT", "IU/L"),
    "urine_protein": InputSpec("Urine protein code", ""),
    "smoking": InputSpec("Smoking code", "", 1.0, True),
    # computed by the equations, readable by rules like any input
    "bmi_exact": InputSpec("BMI", "kg/m²", 0.1, fmt=".4g"),  # unrounded: what the BMI rules compare
    "egfr": InputSpec("eGFR", "mL/min/1.73 m²", 0.1),
}
COMPUTED_INPUTS: dict[str, tuple[str, ...]] = {
    "bmi_exact": ("height_cm", "weight_kg"),
    "egfr": ("creatinine", "sex", "age_group"),
}
"""Computed inputs -> the raw columns they are computed from."""
NUMERIC_INPUTS: tuple[str, ...] = tuple(k for k in INPUTS if k not in COMPUTED_INPUTS)
RAW_INPUTS: tuple[str, ...] = ("sex", "age_group", *NUMERIC_INPUTS)
"""Every raw column a rule can read, in the order RULE_INPUTS lists them."""


@dataclass(frozen=True, slots=True)
class Condition:
    """``input OP threshold``."""

    input: str
    op: Op
    threshold: Threshold


@dataclass(frozen=True, slots=True)
class FlagRule:
    """Tri-state OR of conditions -> nullable bool column."""

    column: str
    label: str
    conditions: tuple[Condition, ...]
    guideline: str


@dataclass(frozen=True, slots=True)
class AllOfRule:
    """Tri-state AND of conditions -> nullable bool column (isolated systolic hypertension)."""

    column: str
    label: str
    conditions: tuple[Condition, ...]
    guideline: str


@dataclass(frozen=True, slots=True)
class CodeFlagRule:
    """True for some codes, false for others, null for anything else (e.g. smoking == 3)."""

    column: str
    label: str
    input: str
    true_codes: tuple[float, ...]
    false_codes: tuple[float, ...]
    guideline: str
    what_if_target: float  # the code a what-if moves to (smoking: current -> former)


@dataclass(frozen=True, slots=True)
class BandRule:
    """Half-open bands over one input -> category column."""

    column: str
    label: str
    input: str
    cuts: tuple[Threshold, ...]
    labels: tuple[str, ...]
    guideline: str
    reference: tuple[str, ...]  # labels that need no explanation (the "normal" ones)

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.cuts) + 1:
            raise ValueError(f"{self.column}: need one more label than cuts")

    @property
    def sex_specific(self) -> bool:
        return any(c.sex_specific for c in self.cuts)


@dataclass(frozen=True, slots=True)
class BloodPressureRule:
    """KSH 2018 office BP table: each of SBP/DBP gives a rank; the higher rank wins.

    Isolated systolic hypertension is not a rank here (it would hide grade 1 and 2 people from
    the grade counts); it is its own tri-state column (``ISOLATED_SYSTOLIC_RULE``).
    """

    column: str
    label: str
    labels: tuple[str, ...]
    sbp_steps: tuple[tuple[float, int], ...]  # (cut, rank reached when SBP >= cut), ascending
    dbp_steps: tuple[tuple[float, int], ...]
    guideline: str
    reference: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CountRule:
    """Tri-state "at least k of n" over flag columns (metabolic syndrome: 3 of 5)."""

    column: str
    label: str
    components: tuple[str, ...]
    min_true: int
    guideline: str


@dataclass(frozen=True, slots=True)
class ScreeningGroupRule:
    """The previous system's seven-flag grouping (screening-flag count, adapted from ATP III).

    CHD_RISK_EQUIVALENT if diabetes true; else MULTIPLE_RISK_FACTORS if >= 2 known trues; else
    ZERO_TO_ONE_RISK_FACTOR only if diabetes is known false and known trues + unknown
    non-diabetes factors < 2; else INDETERMINATE.
    """

    column: str
    count_column: str
    diabetes: str
    factors: tuple[str, ...]  # non-diabetes factor columns
    min_multiple: int
    labels: tuple[str, str, str, str]  # CHD, MULTIPLE, ZERO_TO_ONE, INDETERMINATE
    guideline: str


@dataclass(frozen=True, slots=True)
class Atp3Rule:
    """NCEP ATP III risk category (2002 final report).

    Major risk factors: the ``factors`` flags (current smoking, BP >= 140/90, HDL < 40) and age
    (``age`` threshold, years, men / women); HDL >= 60 (``negative``) subtracts one; diabetes
    (``chd_equivalent``) is a CHD risk equivalent. Family history of premature CHD is not in the
    data, so it is never counted. The category is tri-state: with the unknown inputs set every way
    they could be, if the category could differ it is INDETERMINATE. ``count_column`` is the net
    count of *known* factors (known trues minus a known HDL >= 60).
    """

    column: str
    count_column: str
    chd_equivalent: str
    factors: tuple[str, ...]
    age: Threshold
    negative: Condition
    min_multiple: int
    labels: tuple[str, str, str, str]  # CHD_RISK_EQUIVALENT, TWO_PLUS, ZERO_TO_ONE, INDETERMINATE
    guideline: str


# --- the table -------------------------------------------------------------------------------------
GE, GT, LT = Op.GE, Op.GT, Op.LT

FLAG_RULES: tuple[FlagRule | CodeFlagRule, ...] = (
    # KSH 2018: hypertension = SBP >= 140 or DBP >= 90
    FlagRule("flag_hypertension", "Hypertension", (Condition("sbp", GE, at(140)), Condition("dbp", GE, at(90))), "KSH_2018"),
    # ADA/KDA: FPG >= 126 (single value -> suspected diabetes)
    FlagRule("flag_diabetes", "Suspected diabetes", (Condition("fasting_glucose", GE, at(126)),), "ADA_KDA"),
    # ATP III / KSoLA: TC >= 240 high
    FlagRule("flag_high_total_cholesterol", "High total cholesterol", (Condition("total_cholesterol", GE, at(240)),), "ATP3_2002"),
    # ATP III / KSoLA: TG >= 200 high
    FlagRule("flag_high_triglycerides", "High triglycerides", (Condition("triglycerides", GE, at(200)),), "ATP3_2002"),
    # ATP III / KSoLA: HDL < 40 low (not sex-specific in ATP III's lipid categories)
    FlagRule("flag_low_hdl", "Low HDL cholesterol", (Condition("hdl", LT, at(40)),), "ATP3_2002"),
    # KSSO 2022 / WHO WPRO 2000: BMI >= 25 obesity, on the unrounded BMI
    FlagRule("flag_obesity", "Obesity", (Condition("bmi_exact", GE, at(25)),), "KSSO_2022"),
    # dataset code 흡연상태: 1 never, 2 former, 3 current
    CodeFlagRule("flag_smoking", "Current smoking", "smoking", (3.0,), (1.0, 2.0), "NHIS_MANUAL", 2.0),
)

SCREENING_GROUP_RULE = ScreeningGroupRule(
    column="screening_risk_group",
    count_column="risk_factor_count",
    diabetes="flag_diabetes",
    factors=(
        "flag_hypertension",
        "flag_high_total_cholesterol",
        "flag_high_triglycerides",
        "flag_low_hdl",
        "flag_obesity",
        "flag_smoking",
    ),
    min_multiple=2,
    labels=("CHD_RISK_EQUIVALENT", "MULTIPLE_RISK_FACTORS", "ZERO_TO_ONE_RISK_FACTOR", "INDETERMINATE"),
    guideline="SCREENING_GROUP",
)

ATP3_RULE = Atp3Rule(
    column="atp3_risk_category",
    count_column="atp3_risk_factor_count",
    chd_equivalent="flag_diabetes",
    # ATP III major risk factors: cigarette smoking, BP >= 140/90 (or drugs: not in the data),
    # HDL < 40; the flags above use exactly these cuts (checked by _check_table)
    factors=("flag_smoking", "flag_hypertension", "flag_low_hdl"),
    age=at(45, female=55),  # ATP III: men >= 45 years, women >= 55 years
    negative=Condition("hdl", GE, at(60)),  # ATP III: HDL >= 60 removes one risk factor
    min_multiple=2,
    labels=("CHD_RISK_EQUIVALENT", "TWO_PLUS_RISK_FACTORS", "ZERO_TO_ONE_RISK_FACTOR", "INDETERMINATE"),
    guideline="ATP3_2002",
)

BP_RULE = BloodPressureRule(
    column="bp_category",
    label="Blood pressure",
    labels=("normal", "elevated", "prehypertension", "stage1", "stage2"),
    # KSH 2018 Table 1: SBP <120 normal, 120-129 elevated, 130-139 prehypertension, 140-159 grade 1,
    # >=160 grade 2 [grade bounds unverified]; DBP <80 normal, 80-89 pre-HTN, 90-99 grade 1, >=100 grade 2
    sbp_steps=((120.0, 1), (130.0, 2), (140.0, 3), (160.0, 4)),
    dbp_steps=((80.0, 2), (90.0, 3), (100.0, 4)),
    guideline="KSH_2018",
    reference=("normal",),
)

# KSH 2018 Table 1: isolated systolic hypertension = SBP >= 140 and DBP < 90 (any grade)
ISOLATED_SYSTOLIC_RULE = AllOfRule(
    "isolated_systolic", "Isolated systolic hypertension",
    (Condition("sbp", GE, at(140)), Condition("dbp", LT, at(90))), "KSH_2018",
)

BAND_RULES: tuple[BandRule, ...] = (
    # ADA/KDA: <100 normal, 100-125 impaired fasting glucose, >=126 diabetes (suspected)
    BandRule("glucose_category", "Fasting glucose", "fasting_glucose", (at(100), at(126)),
             ("normal", "impaired", "diabetes"), "ADA_KDA", ("normal",)),
    # KSSO 2022: <18.5, 18.5-22.9, 23-24.9, 25-29.9, 30-34.9, >=35 (unrounded BMI)
    BandRule("bmi_class", "BMI class", "bmi_exact", (at(18.5), at(23), at(25), at(30), at(35)),
             ("underweight", "normal", "pre_obese", "obese_1", "obese_2", "obese_3"), "KSSO_2022", ("normal",)),
    # ATP III / KSoLA: TC <200 desirable, 200-239 borderline high, >=240 high
    BandRule("tc_class", "Total cholesterol", "total_cholesterol", (at(200), at(240)),
             ("desirable", "borderline_high", "high"), "ATP3_2002", ("desirable",)),
    # ATP III / KSoLA: LDL <100, 100-129, 130-159, 160-189, >=190
    BandRule("ldl_class", "LDL cholesterol", "ldl", (at(100), at(130), at(160), at(190)),
             ("optimal", "near_optimal", "borderline_high", "high", "very_high"), "ATP3_2002",
             ("optimal", "near_optimal")),
    # ATP III / KSoLA: TG <150, 150-199, 200-499, >=500
    BandRule("tg_class", "Triglycerides", "triglycerides", (at(150), at(200), at(500)),
             ("normal", "borderline_high", "high", "very_high"), "ATP3_2002", ("normal",)),
    # ATP III / KSoLA: HDL <40 low, >=60 high
    BandRule("hdl_class", "HDL cholesterol", "hdl", (at(40), at(60)),
             ("low", "normal", "high"), "ATP3_2002", ("normal", "high")),
    # WHO 2011: severe < 8, moderate 8-10.9, mild 11-12.9 men / 11-11.9 women
    BandRule("anemia_severity", "Anemia severity", "hemoglobin", (at(8), at(11), at(13, female=12)),
             ("severe", "moderate", "mild", "none"), "WHO_2011_HB", ("none",)),
    # KDIGO: G5 <15, G4 15-29, G3b 30-44, G3a 45-59, G2 60-89, G1 >=90
    BandRule("egfr_stage", "eGFR category", "egfr", (at(15), at(30), at(45), at(60), at(90)),
             ("G5", "G4", "G3b", "G3a", "G2", "G1"), "KDIGO_2012", ("G1", "G2")),
    # dataset codes: 1 (-) negative, 2 (±) trace, >=3 (+1..+4) positive
    BandRule("proteinuria", "Proteinuria", "urine_protein", (at(2), at(3)),
             ("negative", "trace", "positive"), "NHIS_MANUAL", ("negative",)),
)

# Boolean categories and metabolic-syndrome components: same tri-state semantics as the flags.
EXTRA_FLAG_RULES: tuple[FlagRule, ...] = (
    # KSSO: abdominal obesity = waist >= 90 cm men, >= 85 cm women
    FlagRule("abdominal_obesity", "Abdominal obesity", (Condition("waist_cm", GE, at(90, female=85)),), "KSSO_WAIST"),
    # Korean epidemiological definition (KNHANES, Lee 2012, ATP III cuts): TC >= 240, LDL >= 160,
    # TG >= 200 or HDL < 40 (lipid-lowering drugs would count too: not in the data)
    FlagRule("dyslipidaemia", "Dyslipidaemia",
             (Condition("total_cholesterol", GE, at(240)), Condition("ldl", GE, at(160)),
              Condition("triglycerides", GE, at(200)), Condition("hdl", LT, at(40))), "KNHANES_DYSLIPIDAEMIA"),
    # NCEP 2005 with Korean waist: >= 90 men / >= 85 women
    FlagRule("mets_waist", "MetS waist", (Condition("waist_cm", GE, at(90, female=85)),), "NCEP_2005"),
    # NCEP 2005: TG >= 150
    FlagRule("mets_triglycerides", "MetS triglycerides", (Condition("triglycerides", GE, at(150)),), "NCEP_2005"),
    # NCEP 2005: HDL < 40 men / < 50 women
    FlagRule("mets_hdl", "MetS HDL", (Condition("hdl", LT, at(40, female=50)),), "NCEP_2005"),
    # NCEP 2005: SBP >= 130 or DBP >= 85
    FlagRule("mets_bp", "MetS blood pressure", (Condition("sbp", GE, at(130)), Condition("dbp", GE, at(85))), "NCEP_2005"),
    # NCEP 2005: FPG >= 100
    FlagRule("mets_glucose", "MetS glucose", (Condition("fasting_glucose", GE, at(100)),), "NCEP_2005"),
    # WHO 2011: anemia = Hb < 13 g/dL men, < 12 g/dL non-pregnant women
    FlagRule("anemia", "Anemia", (Condition("hemoglobin", LT, at(13, female=12)),), "WHO_2011_HB"),
    # NHIS manual reference range AST/ALT 0-40 IU/L: high if AST > 40 or ALT > 40
    FlagRule("liver_enzymes_high", "Liver enzymes high", (Condition("ast", GT, at(40)), Condition("alt", GT, at(40))), "NHIS_MANUAL"),
    # NHIS manual reference range GGT men 11-63, women 8-35 IU/L: high if > 63 men / > 35 women
    FlagRule("ggt_high", "GGT high", (Condition("ggt", GT, at(63, female=35)),), "NHIS_MANUAL"),
)

METS_RULE = CountRule(
    column="metabolic_syndrome",
    label="Metabolic syndrome",
    components=("mets_waist", "mets_triglycerides", "mets_hdl", "mets_bp", "mets_glucose"),
    min_true=3,  # NCEP ATP III (AHA/NHLBI 2005): >= 3 of 5
    guideline="NCEP_2005",
)

ALL_FLAG_RULES: tuple[FlagRule | CodeFlagRule, ...] = (*FLAG_RULES, *EXTRA_FLAG_RULES)

DERIVED_COLUMNS: tuple[str, ...] = (
    "bmi",
    # the seven screening flags stay right after bmi (statistics read them as the first seven)
    "flag_hypertension",
    "flag_diabetes",
    "flag_high_total_cholesterol",
    "flag_high_triglycerides",
    "flag_low_hdl",
    "flag_obesity",
    "flag_smoking",
    "risk_factor_count",
    "screening_risk_group",
    "atp3_risk_factor_count",
    "atp3_risk_category",
    "bp_category",
    "isolated_systolic",
    "glucose_category",
    "bmi_class",
    "abdominal_obesity",
    "tc_class",
    "ldl_class",
    "tg_class",
    "hdl_class",
    "dyslipidaemia",
    "mets_waist",
    "mets_triglycerides",
    "mets_hdl",
    "mets_bp",
    "mets_glucose",
    "metabolic_syndrome",
    "anemia",
    "anemia_severity",
    "egfr",
    "egfr_stage",
    "proteinuria",
    "liver_enzymes_high",
    "ggt_high",
    "cvd_10y",
)

FLOAT_COLUMNS: tuple[str, ...] = ("bmi", "egfr", "cvd_10y")
INT_COLUMNS: tuple[str, ...] = (SCREENING_GROUP_RULE.count_column, ATP3_RULE.count_column)
# Column kind (for the DB schema): float | bool | int | category; categories list their levels.
CATEGORY_LEVELS: dict[str, tuple[str, ...]] = {
    SCREENING_GROUP_RULE.column: SCREENING_GROUP_RULE.labels,
    ATP3_RULE.column: ATP3_RULE.labels,
    BP_RULE.column: BP_RULE.labels,
    **{r.column: r.labels for r in BAND_RULES},
}
DERIVED_KINDS: dict[str, str] = {
    c: (
        "float"
        if c in FLOAT_COLUMNS
        else "int"
        if c in INT_COLUMNS
        else "category"
        if c in CATEGORY_LEVELS
        else "bool"
    )
    for c in DERIVED_COLUMNS
}

# Guideline of every derived column (for explanations and docs).
COLUMN_GUIDELINE: dict[str, str] = {
    "bmi": "KSSO_2022",
    "egfr": "CKD_EPI_2021",
    "cvd_10y": "FRAMINGHAM_2008",
    SCREENING_GROUP_RULE.column: SCREENING_GROUP_RULE.guideline,
    SCREENING_GROUP_RULE.count_column: SCREENING_GROUP_RULE.guideline,
    ATP3_RULE.column: ATP3_RULE.guideline,
    ATP3_RULE.count_column: ATP3_RULE.guideline,
    BP_RULE.column: BP_RULE.guideline,
    ISOLATED_SYSTOLIC_RULE.column: ISOLATED_SYSTOLIC_RULE.guideline,
    METS_RULE.column: METS_RULE.guideline,
    **{r.column: r.guideline for r in ALL_FLAG_RULES},
    **{r.column: r.guideline for r in BAND_RULES},
}


# --- raw inputs of every derived column ------------------------------------------------------------
# How a CVD model's named inputs map to raw columns (anything else is a measured column itself).
_MODEL_INPUT_SOURCES: dict[str, tuple[str, ...]] = {
    "age": ("age_group",),
    "current_smoker": ("smoking",),
    "diabetes": ("fasting_glucose",),
}


def _raw(name: str) -> set[str]:
    return set(COMPUTED_INPUTS.get(name, (name,)))


def _condition_inputs(conditions: tuple[Condition, ...]) -> set[str]:
    names: set[str] = set()
    for c in conditions:
        names |= _raw(c.input)
        if c.threshold.sex_specific:
            names.add("sex")
    return names


def _compute_rule_inputs() -> dict[str, tuple[str, ...]]:
    """Derived column -> the raw columns it needs, transitively (BMI -> height and weight, ...)."""
    need: dict[str, set[str]] = {}
    for rule in ALL_FLAG_RULES:
        need[rule.column] = {rule.input} if isinstance(rule, CodeFlagRule) else _condition_inputs(rule.conditions)
    need[ISOLATED_SYSTOLIC_RULE.column] = _condition_inputs(ISOLATED_SYSTOLIC_RULE.conditions)
    for band in BAND_RULES:
        need[band.column] = _raw(band.input) | ({"sex"} if band.sex_specific else set())
    need[BP_RULE.column] = {"sbp", "dbp"}
    need["bmi"] = _raw("bmi_exact")
    need["egfr"] = _raw("egfr")
    need[METS_RULE.column] = set().union(*(need[c] for c in METS_RULE.components))
    g = SCREENING_GROUP_RULE
    need[g.column] = need[g.count_column] = set().union(*(need[c] for c in (g.diabetes, *g.factors)))
    a = ATP3_RULE
    atp3 = set().union(*(need[c] for c in (a.chd_equivalent, *a.factors))) | _raw(a.negative.input) | {"sex", "age_group"}
    need[a.column] = need[a.count_column] = atp3
    model = CVD_MODELS[DEFAULT_CVD_MODEL]
    need["cvd_10y"] = {raw for name in model.inputs for raw in _MODEL_INPUT_SOURCES.get(name, (name,))}
    order = {name: i for i, name in enumerate(RAW_INPUTS)}
    return {c: tuple(sorted(need[c], key=order.__getitem__)) for c in DERIVED_COLUMNS}


RULE_INPUTS: dict[str, tuple[str, ...]] = _compute_rule_inputs()
"""Derived column -> the raw input columns (measurements, ``sex``, ``age_group``) it needs.

Stable shape, ``dict[str, tuple[str, ...]]``: the statistics count a rule's complete-panel
population as the people with every one of these measured.
"""

def _check_table() -> None:
    """Fail at import if the table, the column list and the ATP III factor cuts drift apart."""
    produced = (
        {"bmi", "egfr", "cvd_10y", BP_RULE.column, ISOLATED_SYSTOLIC_RULE.column, METS_RULE.column}
        | {SCREENING_GROUP_RULE.column, SCREENING_GROUP_RULE.count_column, ATP3_RULE.column, ATP3_RULE.count_column}
        | {r.column for r in ALL_FLAG_RULES}
        | {r.column for r in BAND_RULES}
    )
    if produced != set(DERIVED_COLUMNS) or len(DERIVED_COLUMNS) != len(set(DERIVED_COLUMNS)):
        raise ValueError(f"rule table and DERIVED_COLUMNS disagree: {sorted(produced ^ set(DERIVED_COLUMNS))}")
    by_column = {r.column: r for r in ALL_FLAG_RULES}
    atp3_definitions = {  # ATP III's own definitions of the major risk factors it shares with the flags
        "flag_hypertension": (Condition("sbp", GE, at(140)), Condition("dbp", GE, at(90))),
        "flag_low_hdl": (Condition("hdl", LT, at(40)),),
    }
    for column, conditions in atp3_definitions.items():
        rule = by_column[column]
        if not isinstance(rule, FlagRule) or rule.conditions != conditions:
            raise ValueError(f"{column} no longer matches the ATP III major risk factor it stands for")
    smoking = by_column["flag_smoking"]
    if not isinstance(smoking, CodeFlagRule) or smoking.true_codes != (3.0,):
        raise ValueError("flag_smoking no longer means current smoking (ATP III major risk factor)")


_check_table()
