"""Crude (Wilson) and directly standardised rates against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from shared.stats.rates import WHO_WEIGHTS, band_weights, standardised, wilson


def test_who_weights_cover_100000_with_85_plus_pooled() -> None:
    assert WHO_WEIGHTS.sum() == 100_035  # the published table rounds to 100.035%; weights are renormalised
    assert WHO_WEIGHTS[4] == 8220 and WHO_WEIGHTS[17] == 440 + 150 + 40 + 5  # 20-24 and 85+
    w = band_weights([5, 6, 18])
    assert w.sum() == pytest.approx(1.0) and w[0] == pytest.approx(8220 / (8220 + 7930 + 635))


def test_wilson_interval_matches_the_formula() -> None:
    p, low, high = wilson(np.array([5, 0, 20]), np.array([10, 10, 20]))
    assert p.tolist() == [0.5, 0.0, 1.0]
    assert low[0] == pytest.approx(0.2366, abs=1e-4) and high[0] == pytest.approx(0.7634, abs=1e-4)
    assert low[1] == 0.0 and high[1] == pytest.approx(0.2775, abs=1e-4)  # not degenerate at 0
    assert high[2] == 1.0 and low[2] == pytest.approx(0.8389, abs=1e-4)
    assert np.isnan(wilson(np.array([0]), np.array([0]))[0][0])


def test_standardised_rate_is_the_weighted_band_rate() -> None:
    d = np.array([[10, 30, 50], [0, 0, 0]])
    n = np.array([[100, 100, 100], [100, 0, 100]])
    w = band_weights([9, 10, 11])
    rate, low, high = standardised(d, n, w)
    expected = float((w * np.array([0.1, 0.3, 0.5])).sum())
    se = float(np.sqrt((w ** 2 * np.array([0.09, 0.21, 0.25]) / 100).sum()))
    assert rate[0] == pytest.approx(expected)
    assert low[0] == pytest.approx(expected - 1.959963984540054 * se) and high[0] > rate[0]
    assert np.isnan(rate[1]) and np.isnan(low[1])  # a band with no one measured: no rate at all
