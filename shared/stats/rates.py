"""Crude and directly age-standardised prevalences with 95% confidence intervals (numpy, vectorised).

Standard population: the WHO World Standard Population 2000-2025 (Ahmad OB, Boschi-Pinto C, Lopez
AD, Murray CJL, Lozano R, Inoue M. *Age standardization of rates: a new WHO standard.* GPE
Discussion Paper Series No. 31, World Health Organization, 2001), per 100,000 by 5-year band. The
2005 Korean mid-year estimated population that KNHANES uses was not available to us from a primary
source with its band counts, so it is not used (docs/STATISTICS.md).

* Crude prevalence p = d / n with the Wilson score interval (Wilson EB. *Probable inference, the
  law of succession, and statistical inference.* J Am Stat Assoc 1927;22(158):209-212,
  doi:10.1080/01621459.1927.10502953).
* Directly standardised prevalence DSR = sum_i w_i d_i / n_i over the bands i of the standard
  range, weights renormalised to 1 over those bands; variance sum_i w_i^2 p_i (1 - p_i) / n_i and a
  normal-approximation interval DSR +/- 1.96 SE clipped to [0, 1] (Klein RJ, Schoenborn CA. *Age
  adjustment using the 2000 projected U.S. population.* Healthy People 2010 Statistical Notes
  No. 20, National Center for Health Statistics, 2001). A prevalence is not rare, so the Poisson
  gamma interval of Fay & Feuer (1997) for rates of rare events is not needed; cells under the
  small-cell minimum are never published, so no interval rests on a handful of people.
"""

from __future__ import annotations

import numpy as np

STANDARD_POPULATION = {
    "name": "WHO World Standard Population (2000-2025)",
    "source": "Ahmad OB et al. Age standardization of rates: a new WHO standard. "
              "GPE Discussion Paper Series No. 31, World Health Organization, 2001",
    "method": "direct standardisation over the published 5-year age bands; weights renormalised over "
              "the bands of each factor's standard range",
    "interval": "95%: Wilson score (crude); normal approximation with binomial variance, clipped to "
                "0-100 (standardised)",
}

# WHO World Standard Population per 100,000, bands 0-4, 5-9, ..., 80-84, then 85+ (= 85-89 440 +
# 90-94 150 + 95-99 40 + 100+ 5). Index k - 1 is the weight of the dataset's age code k.
WHO_WEIGHTS = np.array([8860, 8690, 8600, 8470, 8220, 7930, 7610, 7150, 6590, 6040, 5370, 4550, 3720,
                        2960, 2210, 1520, 910, 635], dtype=np.float64)
Z95 = 1.959963984540054


def band_weights(codes: list[int] | np.ndarray) -> np.ndarray:
    """Standard weights of these age codes (1..18), renormalised to sum to 1."""
    w = WHO_WEIGHTS[np.asarray(codes, dtype=np.int64) - 1]
    return w / w.sum()


def wilson(d: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p, low, high) as fractions; NaN where n == 0."""
    d = np.asarray(d, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = d / n
        z2 = Z95 * Z95
        centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        half = Z95 * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    bad = n <= 0
    return (np.where(bad, np.nan, p), np.where(bad, np.nan, np.clip(centre - half, 0, 1)),
            np.where(bad, np.nan, np.clip(centre + half, 0, 1)))


def standardised(d: np.ndarray, n: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Direct standardisation over the last axis (bands): (rate, low, high) as fractions, NaN where
    any band has no one measured (the rate would silently drop that band)."""
    d = np.asarray(d, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = d / n
        rate = (p * weights).sum(axis=-1)
        se = np.sqrt((weights * weights * p * (1 - p) / n).sum(axis=-1))
    bad = (n <= 0).any(axis=-1)
    return (np.where(bad, np.nan, rate), np.where(bad, np.nan, np.clip(rate - Z95 * se, 0, 1)),
            np.where(bad, np.nan, np.clip(rate + Z95 * se, 0, 1)))


RATE_DECIMALS = 1  # trends print rates to 0.1 percentage point, as KNHANES reports prevalences


def _bounds(x: np.ndarray, hidden: np.ndarray, k: int, lo: np.ndarray | float = 0) -> tuple[np.ndarray, np.ndarray]:
    """The range a withheld count could take without the reader seeing a difference: +-k."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(hidden, np.maximum(lo, x - k), x), np.where(hidden, x + k, x)


def _same_rounding(low: np.ndarray, high: np.ndarray, decimals: int = 2) -> np.ndarray:
    """True where every value between low and high (percent) prints the same at ``decimals``."""
    return np.round(low, decimals) == np.round(high, decimals)


def wilson_stable(d: np.ndarray, d_hidden: np.ndarray, n: np.ndarray, n_hidden: np.ndarray, k: int,
                  decimals: int = 1) -> np.ndarray:
    """Whether the crude rate and its Wilson interval print the same (percent at ``decimals``) at
    every corner of the withheld inputs' +-k range (each is monotone in d and n)."""
    d_lo, d_hi = _bounds(d, d_hidden, k)
    n_lo, n_hi = _bounds(n, n_hidden, k, 1)
    corners = [wilson(np.minimum(dd, nn), nn) for dd in (d_lo, d_hi) for nn in (n_lo, n_hi)]
    stable = np.asarray(n) > 0
    for part in range(3):
        values = np.stack([100 * c[part] for c in corners])
        values = np.where(np.isnan(values), np.inf, values)  # an empty panel is never printed anyway
        stable &= _same_rounding(values.min(axis=0), values.max(axis=0), decimals)
    return stable


def standardised_stable(d: np.ndarray, d_hidden: np.ndarray, n: np.ndarray, n_hidden: np.ndarray,
                        weights: np.ndarray, k: int, decimals: int = 1) -> np.ndarray:
    """Whether the standardised rate and its interval print the same (percent at ``decimals``) for every
    withheld band count moved by up to k people. The rate and its variance are sums of band terms,
    so the sums of each term's smallest and largest values bound them exactly."""
    d_lo, d_hi = _bounds(d, d_hidden, k)
    n_lo, n_hi = _bounds(n, n_hidden, k, 1)
    terms, variances = [], []
    for dd in (d_lo, d_hi):
        for nn in (n_lo, n_hi):
            dd_ = np.minimum(dd, nn)
            with np.errstate(divide="ignore", invalid="ignore"):
                p = dd_ / nn
                terms.append(weights * p)
                variances.append(weights * weights * p * (1 - p) / nn)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_lo, p_hi = d_lo / n_hi, np.minimum(d_hi / n_lo, 1)
        peak = np.where((p_lo <= 0.5) & (p_hi >= 0.5), weights * weights * 0.25 / n_lo, 0)  # p(1-p) tops at 1/2
    terms, variances = np.stack(terms), np.stack(variances)
    rate_lo, rate_hi = terms.min(axis=0).sum(axis=-1), terms.max(axis=0).sum(axis=-1)
    se_lo = np.sqrt(variances.min(axis=0).sum(axis=-1))
    se_hi = np.sqrt(np.maximum(variances.max(axis=0), peak).sum(axis=-1))
    stable = (np.asarray(n) > 0).all(axis=-1)
    stable &= _same_rounding(100 * rate_lo, 100 * rate_hi, decimals)
    stable &= _same_rounding(100 * np.clip(rate_lo - Z95 * se_hi, 0, 1), 100 * np.clip(rate_hi - Z95 * se_lo, 0, 1),
                             decimals)
    stable &= _same_rounding(100 * np.clip(rate_lo + Z95 * se_lo, 0, 1), 100 * np.clip(rate_hi + Z95 * se_hi, 0, 1),
                             decimals)
    return stable
