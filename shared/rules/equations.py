"""Published equations (BMI, CKD-EPI 2021, Framingham 2008) in two forms that must agree.

Each equation has a numpy form (whole arrays, NaN for "not computable") and a plain-Python form (one
person, None plus a reason). Both spell the arithmetic in the same order; the scalar form uses
``math`` and the vector form numpy, whose transcendental functions may differ by an ulp, which is
why eGFR and the CVD risk are rounded to their reported precision before they leave.

numpy is imported inside the vector forms only: importing this module (the web process does) loads
no numpy.

The CVD model is pluggable: anything satisfying :class:`CvdModel` can be registered in
:data:`CVD_MODELS` (e.g. Korean Heart Study or K-CVD coefficients once their tables are obtained).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

# --- age -------------------------------------------------------------------------------------------
AGE_GROUP_MIN, AGE_GROUP_MAX = 1, 18  # NHIS 연령대코드: k -> ages 5k-5..5k-1, 18 = 85+ (docs/DATA.md)
EGFR_MIN_AGE = 20.0  # CKD-EPI 2021 is an adult equation; 20 is the first age of band 5 (20-24)


def band_midpoint_vec(age_group: np.ndarray) -> np.ndarray:
    """Age for the equations from the 5-year band: 5k-3 (band 18, 85+, -> 87). An approximation."""
    import numpy as np

    k = age_group.astype(np.float64)
    with np.errstate(invalid="ignore"):
        ok = (k >= AGE_GROUP_MIN) & (k <= AGE_GROUP_MAX)
    return np.where(ok, 5.0 * k - 3.0, np.nan)


def band_midpoint(age_group: float | None) -> float | None:
    """Scalar twin of :func:`band_midpoint_vec`."""
    if age_group is None or not (AGE_GROUP_MIN <= age_group <= AGE_GROUP_MAX):
        return None
    return 5.0 * float(age_group) - 3.0


def band_bounds_vec(age_group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) age in years of each band: 5k-5 and 5k-1; band 18 (85+) has no last age (inf)."""
    import numpy as np

    k = age_group.astype(np.float64)
    with np.errstate(invalid="ignore"):
        ok = (k >= AGE_GROUP_MIN) & (k <= AGE_GROUP_MAX)
        lo = np.where(ok, 5.0 * k - 5.0, np.nan)
        hi = np.where(ok, np.where(k >= AGE_GROUP_MAX, np.inf, 5.0 * k - 1.0), np.nan)
    return lo, hi


def band_bounds(age_group: float | None) -> tuple[float, float] | None:
    """Scalar twin of :func:`band_bounds_vec`; None for an unknown band."""
    if age_group is None or not (AGE_GROUP_MIN <= age_group <= AGE_GROUP_MAX):
        return None
    k = float(age_group)
    return 5.0 * k - 5.0, (math.inf if k >= AGE_GROUP_MAX else 5.0 * k - 1.0)


def age_group_from_age(age: float) -> int | None:
    """Band code for exact years, as the dataset would code it (85+ -> 18)."""
    if age < 0:
        return None
    return min(int(age // 5) + 1, AGE_GROUP_MAX)


# --- BMI -------------------------------------------------------------------------------------------
def bmi_exact_vec(height_cm: np.ndarray, weight_kg: np.ndarray) -> np.ndarray:
    """Unrounded BMI (what the BMI rules compare); NaN without height and weight > 0."""
    import numpy as np

    h = height_cm / 100.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        raw = weight_kg / (h * h)
    return np.where((height_cm > 0) & (weight_kg > 0) & np.isfinite(raw), raw, np.nan)


def bmi_vec(bmi_exact: np.ndarray) -> np.ndarray:
    """BMI rounded to 1 decimal, as reported and stored (half to even)."""
    import numpy as np

    return np.rint(bmi_exact * 10.0) / 10.0


def bmi_exact(height_cm: float | None, weight_kg: float | None) -> float | None:
    """Scalar twin of :func:`bmi_exact_vec` (same operations, so the same float)."""
    if height_cm is None or weight_kg is None or height_cm <= 0 or weight_kg <= 0:
        return None
    h = height_cm / 100.0
    h2 = h * h
    if h2 == 0.0:  # an absurdly small height underflows; not computable (the vector form gives NaN)
        return None
    raw = weight_kg / h2
    return raw if math.isfinite(raw) else None


def bmi(height_cm: float | None, weight_kg: float | None) -> float | None:
    """Reported BMI (1 decimal; ``round`` on a float is half-to-even, like ``np.rint``)."""
    raw = bmi_exact(height_cm, weight_kg)
    return None if raw is None else round(raw * 10.0) / 10.0


# --- eGFR: CKD-EPI 2021 (race-free), Inker et al. NEJM 2021 ---------------------------------------
# eGFR = 142 * min(Scr/k, 1)^a * max(Scr/k, 1)^-1.200 * 0.9938^age * 1.012 [female]
CKD_EPI_2021 = {
    "male": {"kappa": 0.9, "alpha": -0.302, "factor": 1.0},
    "female": {"kappa": 0.7, "alpha": -0.241, "factor": 1.012},
    "k": 142.0,
    "beta_high": -1.200,
    "age_base": 0.9938,
}


def egfr_vec(creatinine: np.ndarray, male: np.ndarray, female: np.ndarray, age: np.ndarray) -> np.ndarray:
    """eGFR mL/min/1.73 m², rounded to 1 decimal; NaN without creatinine > 0, sex or age.

    The evaluators pass NaN age for people under :data:`EGFR_MIN_AGE` (adults only)."""
    import numpy as np

    m, f = CKD_EPI_2021["male"], CKD_EPI_2021["female"]
    kappa = np.where(male, m["kappa"], f["kappa"])
    alpha = np.where(male, m["alpha"], f["alpha"])
    factor = np.where(male, m["factor"], f["factor"])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        r = creatinine / kappa
        e = (
            CKD_EPI_2021["k"]
            * np.power(np.minimum(r, 1.0), alpha)
            * np.power(np.maximum(r, 1.0), CKD_EPI_2021["beta_high"])
            * np.power(CKD_EPI_2021["age_base"], age)
            * factor
        )
        e = np.rint(e * 10.0) / 10.0
        ok = (creatinine > 0) & (male | female) & ~np.isnan(age)
    return np.where(ok, e, np.nan)


def egfr(creatinine: float | None, male: bool | None, age: float | None) -> float | None:
    """Scalar twin of :func:`egfr_vec`; ``male`` None means sex unknown."""
    if creatinine is None or creatinine <= 0 or male is None or age is None:
        return None
    c = CKD_EPI_2021["male" if male else "female"]
    r = creatinine / c["kappa"]
    e = (
        CKD_EPI_2021["k"]
        * min(r, 1.0) ** c["alpha"]
        * max(r, 1.0) ** CKD_EPI_2021["beta_high"]
        * CKD_EPI_2021["age_base"] ** age
        * c["factor"]
    )
    return round(e * 10.0) / 10.0


def egfr_reason(creatinine: float | None, male: bool | None, age_first: float | None, age_label: str) -> str:
    """Why eGFR was not computed (called only when it is null); ``age_label`` names the age used."""
    if age_first is not None and age_first < EGFR_MIN_AGE:
        return f"{age_label} is under {EGFR_MIN_AGE:g}: CKD-EPI 2021 is used for adults only"
    if creatinine is None or creatinine <= 0:
        return "missing: creatinine"
    if male is None:
        return "sex unknown"
    return "age unknown"


# --- 10-year CVD risk: pluggable models -----------------------------------------------------------
class CvdModel(Protocol):
    """What a 10-year CVD risk model must offer to be plugged into both paths.

    Inputs are read by name from a mapping: measured inputs (``total_cholesterol``, ``hdl``, ``sbp``,
    ...), ``age`` (years), ``sex`` (1/2) and the 0/1 indicators ``current_smoker`` and
    ``diabetes`` derived from the flags. Missing values are NaN (vector) or None (scalar). The scalar
    form may also read ``bp_treated`` (0/1, default 0): the what-if uses it to show the risk of a
    lower SBP reached with drugs.
    """

    key: str
    label: str
    guideline: str
    caveat: str
    inputs: tuple[str, ...]

    def risk_vec(self, x: Mapping[str, np.ndarray]) -> np.ndarray:
        """Percent risk per row, NaN where the model does not apply."""
        ...

    def risk_one(self, x: Mapping[str, Any]) -> tuple[float | None, str | None]:
        """(percent, None) or (None, reason)."""
        ...


@dataclass(frozen=True, slots=True)
class SexCoefficients:
    """One sex's Cox coefficients, mean linear predictor and 10-year baseline survival."""

    ln_age: float
    ln_tc: float
    ln_hdl: float
    ln_sbp: float  # untreated-SBP coefficient: the dataset has no medication data
    ln_sbp_treated: float  # used only by the what-if note on a drug-lowered SBP
    smoker: float
    diabetes: float
    mean: float
    s0: float


@dataclass(frozen=True, slots=True)
class InputRange:
    """A closed range of an input inside which the model is applied."""

    name: str
    lo: float
    hi: float


@dataclass(frozen=True, slots=True)
class Framingham2008:
    """Framingham general CVD (D'Agostino 2008), office-lipid model, untreated SBP.

    risk = 1 - S0 ** exp(sum(b*x) - mean), in percent rounded to 2 decimals. Applied only inside
    the model's derivation ranges: exact age in [30, 75) (the paper's participants were 30-74) and
    TC, HDL, SBP inside ``ranges`` (see docs/GUIDELINES.md for where those come from).
    """

    key: str = "framingham_2008_general_cvd"
    label: str = "Framingham 2008 general CVD; US-derived, overestimates risk in Koreans"
    guideline: str = "FRAMINGHAM_2008"
    caveat: str = (
        "US-derived (Framingham Heart Study) model; it overestimates absolute risk in Korean "
        "adults. Untreated-SBP coefficients and diabetes = fasting glucose >= 126 are assumed because "
        "the dataset has no medication data; age may be a 5-year band midpoint. Use for relative / "
        "what-if comparison rather than as an absolute risk."
    )
    inputs: tuple[str, ...] = ("age", "sex", "total_cholesterol", "hdl", "sbp", "current_smoker", "diabetes")
    age_min: float = 30.0
    age_max_exclusive: float = 75.0
    ranges: tuple[InputRange, ...] = (
        InputRange("total_cholesterol", 100.0, 400.0),
        InputRange("hdl", 20.0, 100.0),
        InputRange("sbp", 90.0, 200.0),
    )
    # D'Agostino 2008, the office-lipid model's coefficients, means and S0 (the tests check the
    # published example, 13.53 %); the treated-SBP coefficient only feeds the what-if note.
    men: SexCoefficients = SexCoefficients(3.06117, 1.12370, -0.93263, 1.93303, 1.99881, 0.65451, 0.57367, 23.9802, 0.88936)
    women: SexCoefficients = SexCoefficients(2.32888, 1.20904, -0.70833, 2.76157, 2.82263, 0.52873, 0.69154, 26.1931, 0.95012)

    def risk_vec(self, x: Mapping[str, np.ndarray]) -> np.ndarray:
        """Vector form: computed only on eligible rows, one pass per sex with that sex's constants."""
        import numpy as np

        sex, age = x["sex"], x["age"]
        tc, hdl, sbp = x["total_cholesterol"], x["hdl"], x["sbp"]
        smk, dm = x["current_smoker"], x["diabetes"]
        with np.errstate(invalid="ignore"):
            ok = (age >= self.age_min) & (age < self.age_max_exclusive) & ~np.isnan(smk) & ~np.isnan(dm)
            for r in self.ranges:
                v = x[r.name]
                ok &= (v >= r.lo) & (v <= r.hi)
        out = np.full(sex.shape, np.nan)
        for code, c in ((1, self.men), (2, self.women)):
            idx = np.flatnonzero(ok & (sex == code))
            if idx.size == 0:
                continue
            s = (
                c.ln_age * np.log(age[idx])
                + c.ln_tc * np.log(tc[idx])
                + c.ln_hdl * np.log(hdl[idx])
                + c.ln_sbp * np.log(sbp[idx])
                + c.smoker * smk[idx]
                + c.diabetes * dm[idx]
            )
            risk = (1.0 - np.power(c.s0, np.exp(s - c.mean))) * 100.0
            out[idx] = np.rint(risk * 100.0) / 100.0
        return out

    def reason(self, x: Mapping[str, Any]) -> str | None:
        """The first reason the model cannot be applied to one person, or None if it can."""
        sex, age = x.get("sex"), x.get("age")
        if sex not in (1, 2):
            return "sex unknown"
        if age is None:
            return "age unknown"
        if not (self.age_min <= age < self.age_max_exclusive):
            return f"age {age:g} outside the model range 30-74"
        if None in (x.get("total_cholesterol"), x.get("hdl"), x.get("sbp"), x.get("current_smoker"), x.get("diabetes")):
            missing = [k for k in ("total_cholesterol", "hdl", "sbp") if x.get(k) is None]
            # name the inputs a caller must supply (smoking status; fasting glucose gives diabetes)
            missing += [k for k, v in (("smoking", "current_smoker"), ("fasting_glucose", "diabetes")) if x.get(v) is None]
            return "missing: " + ", ".join(missing)
        for r in self.ranges:
            v = x[r.name]
            if not r.lo <= v <= r.hi:
                return f"{r.name} {v:g} outside the model range {r.lo:g}-{r.hi:g}"
        return None

    def risk_one(self, x: Mapping[str, Any]) -> tuple[float | None, str | None]:
        """Scalar form; returns the first reason the model cannot be applied."""
        why = self.reason(x)
        if why is not None:
            return None, why
        c = self.men if x["sex"] == 1 else self.women
        s = (
            c.ln_age * math.log(x["age"])
            + c.ln_tc * math.log(x["total_cholesterol"])
            + c.ln_hdl * math.log(x["hdl"])
            + (c.ln_sbp_treated if x.get("bp_treated") else c.ln_sbp) * math.log(x["sbp"])
            + c.smoker * x["current_smoker"]
            + c.diabetes * x["diabetes"]
        )
        risk = (1.0 - c.s0 ** math.exp(s - c.mean)) * 100.0  # inputs in range: no overflow
        return round(risk * 100.0) / 100.0, None


FRAMINGHAM_2008 = Framingham2008()
CVD_MODELS: dict[str, CvdModel] = {FRAMINGHAM_2008.key: FRAMINGHAM_2008}
DEFAULT_CVD_MODEL = FRAMINGHAM_2008.key


def register_cvd_model(model: CvdModel) -> None:
    """Add a model (e.g. KHS 2014 / K-CVD 2023) so callers can select it by key."""
    CVD_MODELS[model.key] = model
