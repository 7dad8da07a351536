"""The benchmarks' paired comparisons (benchmarks/_paired.py) against hand-computed areas."""
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
from _paired import (  # noqa: E402
    aggregate_area_differences, common_support_differences, paired_differences, per_run_area, stop_usage,
)

GRID = np.linspace(0.2, 0.8, 61)


def _curves():
    rng = np.random.default_rng(0)
    eff = rng.normal(size=(3, 2, GRID.size)).cumsum(-1) + 5.0
    eff[:, 0, 40:] = np.nan   # method a stops at usage 0.59
    eff[1, 1, 25:] = np.nan   # method b stops earlier in run 1 (0.44)
    rnd = rng.normal(size=(3, GRID.size))
    return eff, rnd


def test_common_support_cuts_both_curves_at_the_earlier_stop():
    eff, rnd = _curves()
    gain = {"a": eff[:, 0] - rnd, "b": eff[:, 1] - rnd}
    got = common_support_differences(gain, [("a", "b"), ("a", "a")], GRID)
    stops = [40, 25, 40]
    want = [np.trapezoid(gain["a"][r, :k] - gain["b"][r, :k], GRID[:k]) for r, k in enumerate(stops)]
    assert np.isclose(got["a - b"]["mean"], np.mean(want))
    assert np.isclose(got["a - b"]["se"], np.std(want, ddof=1) / np.sqrt(3))
    assert got["a - a"]["mean"] == 0.0
    # Where the two stop together, the common-support difference is the protocol's full-area difference.
    shifted = eff.copy()
    shifted[:, 1] = eff[:, 0] + np.random.default_rng(1).normal(size=(3, GRID.size))  # a's stops, other values
    full = per_run_area(shifted, rnd)
    together = common_support_differences({"a": shifted[:, 0] - rnd, "c": shifted[:, 1] - rnd}, [("a", "c")], GRID)
    protocol = paired_differences({"a": full[:, 0], "c": full[:, 1]}, [("a", "c")])
    assert abs(protocol["a - c"]["mean"]) > 1e-3
    np.testing.assert_allclose(together["a - c"]["mean"], protocol["a - c"]["mean"], rtol=1e-9)
    np.testing.assert_allclose(together["a - c"]["se"], protocol["a - c"]["se"], rtol=1e-9)
    np.testing.assert_allclose(stop_usage(eff, rnd, GRID), [[GRID[39], GRID[-1]], [GRID[39], GRID[24]], [GRID[39], GRID[-1]]])


def test_a_curve_that_runs_longer_gains_protocol_area_but_not_common_support_area():
    eff, rnd = _curves()
    gain = {"a": eff[:, 0] - rnd, "b": eff[:, 1] - rnd}
    longer = eff.copy()
    longer[:, 0] = eff[:, 1]  # a ranks like b …
    longer[:, 0, 50:] = np.nan  # … but stops at 0.69, b (runs 0 and 2) runs to the end
    g = {"a": longer[:, 0] - rnd, "b": gain["b"]}
    common = common_support_differences(g, [("a", "b")], GRID)
    full = per_run_area(longer, rnd)
    assert common["a - b"]["mean"] == 0.0
    assert not np.allclose(full[:, 0], full[:, 1])


def test_a_run_whose_curve_stops_before_the_grid_has_area_zero():
    eff, rnd = _curves()
    eff[2, 1, :] = np.nan  # method b's ψ̂ is positive on fewer queries than the grid's first usage in run 2
    area = per_run_area(eff, rnd)
    assert area[2, 1] == 0.0
    np.testing.assert_array_equal(np.isfinite(area), True)
    want = np.trapezoid(eff[1, 1, :25] - rnd[1, :25], GRID[:25])  # the other runs keep their areas
    np.testing.assert_allclose(area[1, 1], want, rtol=1e-12)


def test_the_study_area_difference_and_its_paired_bootstrap_se():
    # Curves that all run to the end: the mean curve's raw area is the mean of the runs' areas (trapezoids are
    # linear), so the difference is the per-run mean difference and the bootstrap se estimates its plug-in
    # standard error sd(ddof=0)/sqrt(R). 4,000 resamples: the se estimate's relative Monte-Carlo error is about
    # 1/sqrt(2·4000) = 1.1%, so 5% is over 4 of its standard deviations (fixed seed).
    rng = np.random.default_rng(3)
    R = 60
    eff = rng.normal(size=(R, 2, GRID.size)).cumsum(-1) + 5.0
    rnd = rng.normal(size=(R, GRID.size))
    got = aggregate_area_differences(eff, rnd, None, ["a", "b"], [("a", "b")], n_boot=4000)["a - b"]
    d = per_run_area(eff, rnd) @ np.array([1.0, -1.0])
    np.testing.assert_allclose(got["mean"], d.mean(), rtol=1e-9)
    np.testing.assert_allclose(got["se"], d.std() / np.sqrt(R), rtol=0.05)
    # With stops the study's area is not the mean of areas: a run's curve counts only where it still routes.
    eff[: R // 2, 0, 30:] = np.nan
    got = aggregate_area_differences(eff, rnd, None, ["a", "b"], [("a", "b")], n_boot=10)["a - b"]
    assert not np.isclose(got["mean"], (per_run_area(eff, rnd) @ np.array([1.0, -1.0])).mean())
