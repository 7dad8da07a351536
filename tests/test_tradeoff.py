"""The trade-off engine against brute force: curves at every weight, draws, calibration."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mrjax.inference import policy_value, route_with_uncertainty
from mrjax.router import (
    breakpoints, calibrate_budget, calibrate_share, kth_largest, route, routed_count, routed_sum, tradeoff_curve,
)

EPS32 = float(np.finfo(np.float32).eps)


def _sum_tol(values, n):
    # Recursive float32 summation of n terms errs by at most about n·ε·Σ|v| (Higham's γ_n bound);
    # the float64 reference is exact by comparison.
    return n * EPS32 * np.sum(np.abs(values), axis=-1, keepdims=True) + 1e-30


def _awkward(seed, n=300, S=7):
    """Ties (scores on a 0.1 grid), zero and negative gaps, negative ψ̂, per-query costs."""
    rng = np.random.default_rng(seed)
    psi = np.round(rng.normal(size=n), 1).astype(np.float32)
    cp = rng.choice([0.0, 0.25, 0.5, 1.0, 2.0, 3.0], size=n).astype(np.float32)
    ca = rng.choice([0.0, 0.5, 1.0], size=n, p=[0.6, 0.2, 0.2]).astype(np.float32)
    gains = rng.normal(size=(S, n)).astype(np.float32)
    gap = cp - ca
    b = psi / np.where(gap != 0, gap, 1.0)
    # Weights exactly at every breakpoint, between them, and far outside (any sign).
    w = np.concatenate([b[gap != 0], rng.normal(size=40) * 2, [-50.0, 0.0, 50.0]]).astype(np.float32)
    return psi, cp, ca, gains, w


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_curves_equal_brute_force_at_every_weight_and_draw(seed):
    psi, cp, ca, gains, w = _awkward(seed)
    n = psi.shape[0]
    bp = breakpoints(jnp.asarray(psi), jnp.asarray(cp), jnp.asarray(ca))
    curve = tradeoff_curve(bp, jnp.asarray(w), jnp.asarray(gains))
    D = np.asarray(route(jnp.asarray(psi), jnp.asarray(w), jnp.asarray(cp), jnp.asarray(ca))).astype(np.float64)
    gap = (cp - ca).astype(np.float64)
    # Usage is a count: exact.
    np.testing.assert_array_equal(np.asarray(routed_count(bp, jnp.asarray(w))), D.sum(axis=1))
    np.testing.assert_array_equal(np.asarray(curve.usage), D.sum(axis=1).astype(np.float32) / np.float32(n))
    cost = ca.mean() + D @ gap / n
    np.testing.assert_allclose(curve.cost, cost, rtol=0, atol=float(_sum_tol(gap, n).max()) / n + 1e-6)
    g64 = gains.astype(np.float64)
    quality = np.einsum("wn,sn->sw", D, g64) / n
    value = quality - (w[None, :] * (D @ gap)[None, :]) / n
    eff = quality - (D.mean(axis=1))[None, :] * g64.mean(axis=1, keepdims=True)
    tol = _sum_tol(g64, n) / n + np.abs(w).max() * _sum_tol(gap, n).max() / n
    for got, want in ((curve.quality, quality), (curve.value, value), (curve.efficiency_gain, eff)):
        assert np.all(np.abs(np.asarray(got, np.float64) - want) <= tol + 1e-6)


def test_breakpoint_rule_is_the_papers_rule_away_from_rounding():
    # ψ̂ − w·g > 0 evaluated in float64 at weights not within rounding of a breakpoint.
    psi, cp, ca, _, _ = _awkward(3)
    gap = (cp - ca).astype(np.float64)
    w = np.random.default_rng(3).normal(size=200) * 2
    b = psi / np.where(gap != 0, gap, 1.0)
    w = w[np.min(np.abs(w[:, None] - b[None, gap != 0]), axis=1) > 1e-4]
    papers = psi[None, :].astype(np.float64) - w[:, None] * gap[None, :] > 0
    ours = np.asarray(route(jnp.asarray(psi), jnp.asarray(w, jnp.float32), jnp.asarray(cp), jnp.asarray(ca)))
    np.testing.assert_array_equal(ours, papers)


def test_policy_value_equals_brute_force_and_nan_weight_is_visible():
    psi, cp, ca, gains, w = _awkward(4)
    D = np.asarray(route(jnp.asarray(psi), jnp.asarray(w), jnp.asarray(cp), jnp.asarray(ca)))
    got = np.asarray(policy_value(jnp.asarray(gains), jnp.asarray(psi), jnp.asarray(w), jnp.asarray(cp), jnp.asarray(ca)))
    gap = (cp - ca).astype(np.float64)
    want = np.mean(np.where(D[None], gains[:, None, :] - w[None, :, None] * gap[None, None, :], 0.0), axis=2)
    n = psi.shape[0]
    tol = _sum_tol(gains.astype(np.float64), n) / n + np.abs(w).max() * _sum_tol(gap, n).max() / n
    assert np.all(np.abs(got - want) <= tol + 1e-6)
    bp = breakpoints(jnp.asarray(psi))
    out = np.asarray(routed_sum(bp, jnp.asarray([0.0, np.nan]), jnp.asarray(psi)))
    assert np.isfinite(out[0]) and np.isnan(out[1])


@pytest.mark.slow
def test_chunked_vmapped_and_jitted_draws_agree():
    psi, cp, ca, gains, w = _awkward(5, S=13)
    bp = breakpoints(jnp.asarray(psi), jnp.asarray(cp), jnp.asarray(ca))
    full = np.asarray(routed_sum(bp, jnp.asarray(w), jnp.asarray(gains)))
    for chunk in (1, 4, 13):
        np.testing.assert_array_equal(np.asarray(routed_sum(bp, jnp.asarray(w), jnp.asarray(gains), chunk=chunk)), full)
    one = jax.vmap(lambda g: routed_sum(bp, jnp.asarray(w), g))(jnp.asarray(gains))
    np.testing.assert_array_equal(np.asarray(one), full)
    # Costs closed over are compile-time constants: decisions must not move (see switch_points).
    jitted = jax.jit(lambda s, g, ww: tradeoff_curve(breakpoints(s, jnp.asarray(cp), jnp.asarray(ca)), ww, g))
    got = jitted(jnp.asarray(psi), jnp.asarray(gains), jnp.asarray(w))
    eager = tradeoff_curve(bp, jnp.asarray(w), jnp.asarray(gains))
    np.testing.assert_array_equal(np.asarray(got.usage), np.asarray(eager.usage))
    # Values: fused multiply-adds under jit may round the last bit differently (a few float32 ulps).
    np.testing.assert_allclose(np.asarray(got.value), np.asarray(eager.value), rtol=4 * EPS32, atol=1e-7)


def test_uncertainty_aware_rule_is_the_plug_in_rule_on_an_order_statistic():
    rng = np.random.default_rng(6)
    S, n = 40, 120
    draws = rng.normal(0.1, 0.5, size=(S, n)).astype(np.float32)
    gap = rng.choice([-1.0, 0.0, 0.5, 2.0], size=n).astype(np.float32)
    w = np.asarray([-0.7, -0.1, 0.05, 0.3], np.float32)
    for alpha in (0.5, 0.7, 0.9):
        got = np.asarray(route_with_uncertainty(jnp.asarray(draws), jnp.asarray(w), alpha, jnp.asarray(gap), 0.0))
        prob = np.mean(draws[None].astype(np.float64) - w[:, None, None] * gap[None, None, :] > 0, axis=1)
        np.testing.assert_array_equal(got, prob >= alpha)
        score = np.asarray(kth_largest(jnp.asarray(draws), alpha))
        np.testing.assert_array_equal(score, np.sort(draws, axis=0)[S - int(np.ceil(alpha * S - 1e-9))])
        # (S, n, K) draws of K models' gains: each model's column on its own
        three = np.stack([draws, draws[::-1] * 2.0, -draws], axis=2)
        np.testing.assert_array_equal(np.asarray(kth_largest(jnp.asarray(three), alpha)),
                                      np.stack([np.asarray(kth_largest(jnp.asarray(three[..., k]), alpha))
                                                for k in range(3)], 1))
    with pytest.raises(ValueError, match=r"expected shape \(S, n\) or \(S, n, K\)"):
        kth_largest(jnp.zeros((4,)), 0.5)


@pytest.mark.slow
def test_share_calibration_hits_target_within_one_query_and_is_monotone():
    rng = np.random.default_rng(7)
    n = 1000
    psi = rng.normal(0.05, 0.3, size=n).astype(np.float32)  # continuous: no ties
    cp = rng.uniform(0.5, 2.0, size=n).astype(np.float32)
    bp = breakpoints(jnp.asarray(psi), jnp.asarray(cp), 0.0)
    share = np.linspace(0.0, 1.0, 2001).astype(np.float32)
    cal = calibrate_share(bp, jnp.asarray(share))
    achieved = np.asarray(tradeoff_curve(bp, cal.cost_weight).usage)
    np.testing.assert_array_equal(achieved, np.asarray(cal.usage))
    assert np.max(np.abs(achieved - share)) <= 1.0 / n + 1e-6  # within one query
    w = np.asarray(cal.cost_weight)
    assert np.all(np.diff(w) <= 0)  # more primary calls need a smaller weight
    p_pos = np.mean(psi > 0)
    assert np.all(w[share > p_pos + 2.0 / n] < 0) and np.all(w[share < p_pos - 2.0 / n] > 0)  # any sign


def test_share_calibration_with_ties_and_free_queries_takes_the_nearest_reachable_count():
    psi = jnp.asarray([0.5, 0.5, 0.5, 0.2, -0.1, 0.3, -0.4])
    gap = jnp.asarray([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0])  # query 5 is free and routed at any weight
    bp = breakpoints(psi, gap, 0.0)
    cal = calibrate_share(bp, jnp.asarray([0.0, 2 / 7, 3 / 7, 1.0]))
    counts = np.round(np.asarray(cal.usage) * 7).astype(int)
    # Reachable counts: 1 (the free query), 4 (the tie of three), 5, 6 (query 6 is never routed).
    np.testing.assert_array_equal(counts, [1, 1, 4, 6])
    np.testing.assert_array_equal(np.asarray(routed_count(bp, cal.cost_weight)), counts)


@pytest.mark.slow
def test_budget_calibration_spends_at_most_the_budget_and_stops_at_zero_weight():
    rng = np.random.default_rng(8)
    n = 500
    psi = rng.normal(0.0, 0.4, size=n).astype(np.float32)
    cp = rng.uniform(0.2, 3.0, size=n).astype(np.float32)
    ca = np.full(n, 0.1, np.float32)
    bp = breakpoints(jnp.asarray(psi), jnp.asarray(cp), jnp.asarray(ca))
    budget = np.linspace(0.1, 3.0, 300).astype(np.float32)
    cal = calibrate_budget(bp, jnp.asarray(budget))
    curve = tradeoff_curve(bp, cal.cost_weight, jnp.asarray(psi))
    gap = (cp - ca).astype(np.float64)
    assert np.all(np.asarray(curve.cost) <= budget + n * EPS32 * gap.sum() / n)
    w = np.asarray(cal.cost_weight)
    assert np.all(w >= 0) and np.all(np.diff(w) <= 0)
    q = np.asarray(curve.quality)
    assert np.all(np.diff(q) >= -1e-6)  # more budget never buys less estimated quality
    # Routing one more query (the next breakpoint above 0 that is not yet routed) would overspend.
    b = psi / gap
    for k in range(0, len(budget), 37):
        routed = b > w[k]
        left = np.where(~routed & (b > 0), b, -np.inf)
        if np.isfinite(left.max()):
            nxt = int(np.argmax(left))
            assert ca.mean() + (gap[routed].sum() + gap[nxt]) / n > budget[k] - 1e-5


@pytest.mark.slow
def test_facade_calibrate_share_and_budget_on_unlabelled_queries():
    from mrjax.api import MetaRouter
    from mrjax.data import paper_like

    sim = paper_like(jax.random.key(9), n_gold=60, n_preference=400, n_test=300)
    X, t, o = (np.asarray(a) for a in (sim.data.features, sim.data.is_gold, sim.data.label))
    g = t == 1
    mr = MetaRouter(method="pooled", relevance=False, seed=0).fit(X[g], o[g], X[~g], o[~g])  # ψ̂ any scores
    Xq = np.asarray(sim.test_features)
    cal = mr.calibrate(Xq, share=[0.1, 0.5, 0.95])
    psi = mr.quality_gain(Xq)
    achieved = np.asarray([mr.route(Xq, w).mean() for w in cal.cost_weight])
    assert np.max(np.abs(achieved - [0.1, 0.5, 0.95])) <= 1 / 300 + 1e-9
    np.testing.assert_array_equal(achieved.astype(np.float32), cal.usage)
    assert cal.cost_weight[2] < 0 < np.mean(psi > 0) < 0.95  # above P(ψ̂ > 0) needs a negative weight
    np.testing.assert_allclose(mr.sweep(Xq, cal.cost_weight), achieved, rtol=0, atol=1e-7)
    cost = np.linspace(0.5, 3.0, 300)
    bud = mr.calibrate(Xq, budget=[1.0, 1.5], cost_primary=cost, cost_alternative=0.2)
    assert np.all(bud.cost <= np.asarray([1.0, 1.5]) + 1e-6) and np.all(bud.cost_weight >= 0)
    with pytest.raises(ValueError, match="exactly one of share= or budget="):
        mr.calibrate(Xq)
    with pytest.raises(ValueError, match=r"share must be in \[0, 1\]"):
        mr.calibrate(Xq, share=1.5)
    with pytest.raises(ValueError, match="below the cost of routing every query to the alternative"):
        mr.calibrate(Xq, budget=0.1, cost_primary=cost, cost_alternative=0.2)
    # A budget equal to the alternative's cost in float64 (one float32 ulp below the engine's) routes nothing.
    assert float(np.float32(0.007903)) > 0.007903
    none = mr.calibrate(Xq, budget=0.007903, cost_primary=0.07113, cost_alternative=0.007903)
    assert none.usage[0] == 0.0
    with pytest.raises(ValueError, match="query 0 has a cost gap of"):
        mr.calibrate(Xq, share=0.5, cost_primary=np.r_[-1.0, np.ones(299)])
