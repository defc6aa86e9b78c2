"""Published equations (BMI, CKD-EPI 2021, Framingham 2008) in two forms that must agree.

Each equation has a numpy form (whole chunk, NaN for "not computable") and a plain-Python form (one
person, None plus a reason). Both spell the arithmetic in the same order; the scalar form uses
``math`` and the vector form numpy, whose transcendental functions may differ by an ulp, which is
why eGFR is rounded to the reported precision before it is staged.

The CVD model is pluggable: anything satisfying :class:`CvdModel` can be registered in
:data:`CVD_MODELS` (e.g. Korean Heart Study or K-CVD coefficients once their tables are obtained).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# --- age -------------------------------------------------------------------------------------------
AGE_GROUP_MIN, AGE_GROUP_MAX = 1, 18  # NHIS 연령대코드: k -> ages 5k-5..5k-1, 18 = 85+ (nhis-data §2)


def band_midpoint_vec(age_group: np.ndarray) -> np.ndarray:
    """Age for the equations from the 5-year band: 5k-3 (band 18, 85+, -> 87). An approximation."""
    k = age_group.astype(np.float64)
    ok = (k >= AGE_GROUP_MIN) & (k <= AGE_GROUP_MAX)
    return np.where(ok, 5.0 * k - 3.0, np.nan)


def band_midpoint(age_group: float | None) -> float | None:
    """Scalar twin of :func:`band_midpoint_vec`."""
    if age_group is None or not (AGE_GROUP_MIN <= age_group <= AGE_GROUP_MAX):
        return None
    return 5.0 * float(age_group) - 3.0


def age_group_from_age(age: float) -> int | None:
    """Band code for exact years, as the dataset would code it (85+ -> 18)."""
    if age < 0:
        return None
    return min(int(age // 5) + 1, AGE_GROUP_MAX)


# --- BMI -------------------------------------------------------------------------------------------
def bmi_vec(height_cm: np.ndarray, weight_kg: np.ndarray) -> np.ndarray:
    """BMI rounded to 1 decimal (as reported); classes apply to the rounded value."""
    h = height_cm / 100.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        raw = weight_kg / (h * h)
        out = np.rint(raw * 10.0) / 10.0
    return np.where((height_cm > 0) & (weight_kg > 0) & np.isfinite(out), out, np.nan)


def bmi(height_cm: float | None, weight_kg: float | None) -> float | None:
    """Scalar twin of :func:`bmi_vec` (``round`` on a float is half-to-even, like ``np.rint``)."""
    if height_cm is None or weight_kg is None or height_cm <= 0 or weight_kg <= 0:
        return None
    h = height_cm / 100.0
    h2 = h * h
    if h2 == 0.0:  # an absurdly small height underflows; not computable (the vector form gives NaN)
        return None
    raw = weight_kg / h2 * 10.0
    return round(raw) / 10.0 if math.isfinite(raw) else None


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
    """eGFR mL/min/1.73 m², rounded to 1 decimal; NaN without creatinine > 0, sex or age."""
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


# --- 10-year CVD risk: pluggable models -----------------------------------------------------------
class CvdModel(Protocol):
    """What a 10-year CVD risk model must offer to be plugged into both paths.

    Inputs are read by name from a mapping: measured inputs (``total_cholesterol``, ``hdl``, ``sbp``,
    ...), ``age`` (years), ``sex`` (1/2) and the 0/1 indicators ``current_smoker`` and
    ``diabetes`` derived from the flags. Missing values are NaN (vector) or None (scalar).
    """

    key: str
    label: str
    guideline: str
    caveat: str
    inputs: tuple[str, ...]

    def risk_vec(self, x: Mapping[str, np.ndarray]) -> np.ndarray:
        """Percent risk per row, NaN where the model does not apply."""
        ...

    def risk_one(self, x: Mapping[str, float | None]) -> tuple[float | None, str | None]:
        """(percent, None) or (None, reason)."""
        ...


@dataclass(frozen=True, slots=True)
class SexCoefficients:
    """One sex's Cox coefficients, mean linear predictor and 10-year baseline survival."""

    ln_age: float
    ln_tc: float
    ln_hdl: float
    ln_sbp: float  # untreated-SBP coefficient: the dataset has no medication data
    smoker: float
    diabetes: float
    mean: float
    s0: float


@dataclass(frozen=True, slots=True)
class Framingham2008:
    """Framingham general CVD (D'Agostino 2008), office-lipid model, untreated SBP.

    risk = 1 - S0 ** exp(sum(b*x) - mean). Applies to ages 30-74 (exact age in [30, 75)).
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
    # D'Agostino 2008 Table; reproduced in nhis-data §5.1 (checked against the 13.53% example).
    men: SexCoefficients = SexCoefficients(3.06117, 1.12370, -0.93263, 1.93303, 0.65451, 0.57367, 23.9802, 0.88936)
    women: SexCoefficients = SexCoefficients(2.32888, 1.20904, -0.70833, 2.76157, 0.52873, 0.69154, 26.1931, 0.95012)

    def risk_vec(self, x: Mapping[str, np.ndarray]) -> np.ndarray:
        """Vector form: computed only on eligible rows, one pass per sex with that sex's constants."""
        sex, age = x["sex"], x["age"]
        tc, hdl, sbp = x["total_cholesterol"], x["hdl"], x["sbp"]
        smk, dm = x["current_smoker"], x["diabetes"]
        ok = (
            (age >= self.age_min)
            & (age < self.age_max_exclusive)
            & (tc > 0)
            & (hdl > 0)
            & (sbp > 0)
            & ~np.isnan(smk)
            & ~np.isnan(dm)
        )
        out = np.full(sex.shape, np.nan)
        for code, c in ((1, self.men), (2, self.women)):
            idx = np.flatnonzero(ok & (sex == code))
            if idx.size == 0:
                continue
            with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
                s = (
                    c.ln_age * np.log(age[idx])
                    + c.ln_tc * np.log(tc[idx])
                    + c.ln_hdl * np.log(hdl[idx])
                    + c.ln_sbp * np.log(sbp[idx])
                    + c.smoker * smk[idx]
                    + c.diabetes * dm[idx]
                )
                out[idx] = (1.0 - np.power(c.s0, np.exp(s - c.mean))) * 100.0
        return out

    def risk_one(self, x: Mapping[str, float | None]) -> tuple[float | None, str | None]:
        """Scalar form; returns the first reason the model cannot be applied."""
        sex, age = x.get("sex"), x.get("age")
        if sex not in (1, 2):
            return None, "sex unknown"
        if age is None:
            return None, "age unknown"
        if not (self.age_min <= age < self.age_max_exclusive):
            return None, f"age {age:g} outside the model range 30-74"
        tc, hdl, sbp = x.get("total_cholesterol"), x.get("hdl"), x.get("sbp")
        smk, dm = x.get("current_smoker"), x.get("diabetes")
        if tc is None or hdl is None or sbp is None or smk is None or dm is None or tc <= 0 or hdl <= 0 or sbp <= 0:
            missing = [k for k, v in (("total_cholesterol", tc), ("hdl", hdl), ("sbp", sbp)) if v is None or v <= 0]
            # name the inputs a caller must supply (smoking status; fasting glucose gives diabetes)
            missing += [k for k, v in (("smoking", smk), ("fasting_glucose", dm)) if v is None]
            return None, "missing: " + ", ".join(missing)
        c = self.men if sex == 1 else self.women
        s = (
            c.ln_age * math.log(age)
            + c.ln_tc * math.log(tc)
            + c.ln_hdl * math.log(hdl)
            + c.ln_sbp * math.log(sbp)
            + c.smoker * smk
            + c.diabetes * dm
        )
        z = s - c.mean
        e = math.exp(z) if z < 709.0 else math.inf  # overflow -> S0**inf = 0 -> 100 %, as numpy gives
        return (1.0 - c.s0**e) * 100.0, None


FRAMINGHAM_2008 = Framingham2008()
CVD_MODELS: dict[str, CvdModel] = {FRAMINGHAM_2008.key: FRAMINGHAM_2008}
DEFAULT_CVD_MODEL = FRAMINGHAM_2008.key


def register_cvd_model(model: CvdModel) -> None:
    """Add a model (e.g. KHS 2014 / K-CVD 2023) so callers can select it by key."""
    CVD_MODELS[model.key] = model
