"""Batched bootstrap weights, replicate fits and intervals."""
import dataclasses

import numpy as np
import pytest
import jax
import jax.numpy as jnp

from mrjax.cate import DRLearner, RLearner, XLearner
from mrjax.router import CrossValidatedWeight, Meta
from mrjax.data import fit_standardizer, paper_like, standardize
from mrjax.inference import bootstrap_predict, bootstrap_weights, interval, simultaneous_band
from mrjax.learners import RandomFeatureRidge, Ridge
from mrjax.router import RouterConfig, fit_router, fixed_tuning, predict_quality

SIM = paper_like(jax.random.key(0), n_gold=30, n_preference=170, n_test=20)
CONFIG = RouterConfig(method=Meta(RLearner(outcome=Ridge(), effect=Ridge(), n_folds=3)), quality_learner=Ridge())


@pytest.mark.slow
def test_weight_sums():
    t = SIM.data.is_gold
    m = np.asarray(bootstrap_weights(jax.random.key(1), t, 50, "multinomial"))
    assert m.shape == (50, 200)
    np.testing.assert_array_equal(m[:, :30].sum(1), 30)
    np.testing.assert_array_equal(m[:, 30:].sum(1), 170)
    assert np.all(m == np.round(m)) and m.min() >= 0
    d = np.asarray(bootstrap_weights(jax.random.key(2), t, 50, "dirichlet"))
    np.testing.assert_allclose(d.sum(1), 200, rtol=1e-5)
    np.testing.assert_allclose(d[:, :30].sum(1), 30, rtol=1e-5)
    p = np.asarray(bootstrap_weights(jax.random.key(3), t, 400, "poisson"))
    # Poisson(1) counts: mean 1, sd of the mean over 80,000 cells 0.0035; allow 5 sd.
    assert abs(p.mean() - 1.0) < 0.018
    with pytest.raises(ValueError, match="n_replicates must be at least 2"):
        bootstrap_weights(jax.random.key(0), t, 1)
    with pytest.raises(ValueError, match="bootstrap kind must be one of"):
        bootstrap_weights(jax.random.key(0), t, 5, "jackknife")


@pytest.mark.slow
def test_all_ones_replicate_reproduces_point_fit_and_batched_equals_single():
    key = jax.random.key(4)
    W = bootstrap_weights(jax.random.key(5), SIM.data.is_gold, 4, "multinomial")
    W = W.at[0].set(1.0)
    draws = jax.jit(lambda W: bootstrap_predict(key, SIM.data, SIM.test_features, W, CONFIG, chunk=2))(W)
    fit, _ = jax.jit(fit_router, static_argnums=2)(key, SIM.data, CONFIG)
    # Same math; the batched program is compiled differently, so agreement is to float32
    # rounding of the ridge solves (~1e-5 relative), not bit for bit.
    np.testing.assert_allclose(draws[0], predict_quality(CONFIG, fit, SIM.test_features), rtol=1e-4, atol=1e-4)
    single_jit = jax.jit(lambda w: bootstrap_predict(key, SIM.data, SIM.test_features, w[None].repeat(2, 0), CONFIG, chunk=1))
    for b in (1, 3):  # one program for both replicates
        single = single_jit(W[b])
        np.testing.assert_allclose(draws[b], single[0], rtol=1e-4, atol=1e-4)
    assert not np.allclose(draws[1], draws[2])
    with pytest.raises(ValueError, match=r"weights: expected shape \(B, 200\)"):
        bootstrap_predict(key, SIM.data, SIM.test_features, W[:, :10], CONFIG)


def test_replicates_run_in_equal_chunks_through_one_traced_copy():
    """Any number of replicates maps through one traced (so one compiled) copy of the function, in the fewest
    equal chunks of at most ``chunk``; padded rows never reach the result."""
    from mrjax.inference._bootstrap import _map_chunks, equal_chunk

    assert [equal_chunk(b, 64) for b in (1, 20, 64, 65, 100, 1000)] == [1, 20, 64, 33, 50, 63]
    W = jnp.arange(35.0).reshape(7, 5)
    traces = []

    def f(w):
        traces.append(w.shape)
        return {"sum": jnp.sum(w), "twice": 2 * w}

    _, out = jax.jit(lambda W: _map_chunks(f, W, 3))(W)
    assert traces == [(5,)]  # lax.map(f, W, batch_size=3) traces f twice (three chunks of 2 and a remainder of 1)
    np.testing.assert_array_equal(out["sum"], W.sum(1))
    np.testing.assert_array_equal(out["twice"], 2 * W)


def test_intervals_match_numpy_and_validate():
    rng = np.random.default_rng(0)
    draws = jnp.asarray(rng.normal(1.0, 2.0, size=(4000, 3)), jnp.float32)
    point = jnp.asarray([1.0, 1.0, 1.0])
    lo, hi = interval(draws, point, 0.9, "percentile")
    np.testing.assert_allclose(lo, np.quantile(np.asarray(draws), 0.05, axis=0), rtol=1e-5)
    blo, bhi = interval(draws, point, 0.9, "basic")
    np.testing.assert_allclose(blo, 2 * 1.0 - np.asarray(hi), rtol=1e-5)
    nlo, nhi = interval(draws, point, 0.95, "normal")
    # sd 2 estimated from 4000 draws (se ≈ 0.022): half-width 1.96·2 ± 0.1.
    assert abs(float(nhi[0] - 1.0) - 3.92) < 0.15
    with pytest.raises(ValueError, match="level must be in"):
        interval(draws, point, 1.5)
    with pytest.raises(ValueError, match="interval kind"):
        interval(draws, point, 0.9, "bca")


def test_simultaneous_band_covers_whole_curves_at_its_level():
    rng = np.random.default_rng(1)
    draws = jnp.asarray(rng.normal(size=(2000, 30)), jnp.float32)
    lo, hi = simultaneous_band(draws, jnp.zeros(30), 0.9)
    inside = np.all((np.asarray(draws) >= np.asarray(lo)) & (np.asarray(draws) <= np.asarray(hi)), axis=1)
    # By construction 90% of draws lie wholly inside (± binomial 0.007 sd); a pointwise band would cover far fewer.
    assert abs(inside.mean() - 0.9) < 0.03
    plo, phi = interval(draws, jnp.zeros(30), 0.9, "percentile")
    pointwise = np.all((np.asarray(draws) >= np.asarray(plo)) & (np.asarray(draws) <= np.asarray(phi)), axis=1)
    assert pointwise.mean() < 0.5


def test_route_with_uncertainty_matches_numpy_and_validates():
    from mrjax.inference import route_with_uncertainty

    rng = np.random.default_rng(2)
    draws = rng.normal(loc=np.linspace(-1, 1, 7), scale=0.5, size=(500, 7)).astype(np.float32)
    got = np.asarray(route_with_uncertainty(jnp.asarray(draws), 0.2, alpha=0.8))
    np.testing.assert_array_equal(got, (draws > 0.2).mean(0) >= 0.8)
    many = np.asarray(route_with_uncertainty(jnp.asarray(draws), jnp.asarray([0.0, 0.2]), alpha=0.8))
    np.testing.assert_array_equal(many[1], got)
    # Demanding more certainty never routes more queries to the primary.
    strict = np.asarray(route_with_uncertainty(jnp.asarray(draws), 0.2, alpha=0.95))
    assert strict.sum() <= got.sum() and not np.any(strict & ~got)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="alpha must be in"):
            route_with_uncertainty(jnp.asarray(draws), 0.2, alpha=bad)


def test_replicate_weights_with_nan_or_negative_are_named():
    W = np.ones((3, 200), np.float32)
    W[1, 7] = np.nan
    with pytest.raises(ValueError, match="first at replicate 1, row 7"):
        bootstrap_predict(jax.random.key(0), SIM.data, SIM.test_features, jnp.asarray(W), CONFIG)
    W[1, 7], W[2, 9] = 1.0, -1.0
    with pytest.raises(ValueError, match="replicate 2, row 9"):
        bootstrap_predict(jax.random.key(0), SIM.data, SIM.test_features, jnp.asarray(W), CONFIG)
    with pytest.raises(ValueError, match="at least 2 replicates"):
        bootstrap_predict(jax.random.key(0), SIM.data, SIM.test_features, jnp.ones((1, 200)), CONFIG)


@pytest.mark.slow
def test_policy_value_and_efficiency_gain_match_numpy():
    from mrjax.inference import efficiency_gain_draws, policy_value_draws

    rng = np.random.default_rng(3)
    n = 40
    point = rng.normal(0.3, 1.0, n).astype(np.float32)
    draws = (point + rng.normal(0, 0.5, (6, n))).astype(np.float32)
    cost = rng.uniform(0.5, 1.5, n).astype(np.float32)
    ws = np.array([0.0, 0.25, 1.0], np.float32)
    got, got_point = jax.jit(policy_value_draws)(jnp.asarray(draws), jnp.asarray(point), jnp.asarray(ws), jnp.asarray(cost))
    for b in range(6):
        for j, w in enumerate(ws):
            routed = point > w * cost
            want = np.mean(np.where(routed, draws[b] - w * cost, 0.0))
            np.testing.assert_allclose(got[b, j], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_point[1], np.mean(np.where(point > 0.25 * cost, point - 0.25 * cost, 0.0)), rtol=1e-5)
    # Efficiency gain: a direct transcription with explicit sorting, interpolation and truncation.
    grid = np.round(np.arange(20, 81) / 100.0, 2)
    eg, _ = jax.jit(efficiency_gain_draws)(jnp.asarray(draws), jnp.asarray(point), jnp.asarray(grid))
    order = np.argsort(-point, kind="stable")
    stop = np.sum(point > 0) / n
    for b in range(6):
        cum = np.concatenate([[0.0], np.cumsum(draws[b][order])])
        want = np.interp(grid, np.arange(n + 1) / n, cum) - grid * draws[b].sum()
        want[grid > stop + 1e-9] = np.nan
        np.testing.assert_allclose(np.asarray(eg[b]), want, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="point: expected shape"):
        policy_value_draws(jnp.asarray(draws), jnp.asarray(point[:5]), jnp.asarray(ws))


def test_masked_rows_are_never_drawn():
    t = SIM.data.is_gold
    mask = jnp.arange(200) % 4 != 0  # every fourth row held out
    for kind in ("multinomial", "dirichlet", "poisson"):
        W = np.asarray(bootstrap_weights(jax.random.key(6), t, 20, kind, mask=mask))
        assert np.all(W[:, ~np.asarray(mask)] == 0), kind
    m = np.asarray(bootstrap_weights(jax.random.key(7), t, 20, "multinomial", mask=mask))
    kept_gold = np.asarray(mask) & (np.arange(200) < 30)
    kept_pref = np.asarray(mask) & (np.arange(200) >= 30)
    np.testing.assert_array_equal(m[:, kept_gold].sum(1), kept_gold.sum())
    np.testing.assert_array_equal(m[:, kept_pref].sum(1), kept_pref.sum())


@pytest.mark.slow
def test_fixed_tuning_reproduces_the_fit_and_holds_tuning_in_the_bootstrap():
    """``fixed_tuning`` turns every selected penalty (per fold for cross-fitted nuisances) and
    a cross-validated λ into fixed values; refitting with them on the same data reproduces
    the fit, and ``retune=False`` replicates equal explicit refits with them."""
    sim = paper_like(jax.random.key(6), n_gold=40, n_preference=360, n_test=25)
    rff = RandomFeatureRidge(n_features=48)
    configs = [
        RouterConfig(quality_learner=rff,
                     method=CrossValidatedWeight(Meta(XLearner(outcome=rff, effect=rff)), grid=(0.0, 1.0), folds=3)),
        RouterConfig(quality_learner=rff,
                     method=Meta(DRLearner(outcome=rff, effect=RandomFeatureRidge(48, penalty="loo")))),
    ]
    key = jax.random.key(7)
    fit_jit = jax.jit(fit_router, static_argnames=("config",))  # eager dispatch of every small op is slow
    boot_jit = jax.jit(bootstrap_predict, static_argnames=("config", "target", "chunk", "retune"))
    W = bootstrap_weights(jax.random.key(8), sim.data.is_gold, 3).at[0].set(1.0)
    # The bootstrap standardises once with the point fit's moments; the DR refits below do the same.
    std = fit_standardizer(sim.data.features, sim.data.weight)
    data = sim.data._replace(features=standardize(std, sim.data.features))
    for config in configs:
        fit, info = fit_jit(key, sim.data, config)
        fixed, hyper = fixed_tuning(config, None, info)
        learners = (fixed.quality_learner, fixed.method.cate.outcome, fixed.method.cate.effect)
        assert all(l.penalty_grid is None for l in learners) and isinstance(fixed.method, Meta)
        assert float(hyper.preference_weight) == float(info.preference_weight)
        assert fixed.standardize == config.standardize
        point = predict_quality(config, fit, sim.test_features)
        cv = hasattr(config.method, "select_weight")
        # DR refits on the standardised rows (weight 1 is the point fit's data): the program its replicates
        # below need, instead of a third one compiled for this check alone.
        fixed_s = fixed if cv else dataclasses.replace(fixed, standardize=False)
        refit, _ = fit_jit(key, sim.data if cv else data, fixed_s, hyper)
        queries = sim.test_features if cv else standardize(std, sim.test_features)
        np.testing.assert_allclose(predict_quality(fixed_s, refit, queries), point, rtol=1e-4, atol=1e-4)
        if cv:
            continue  # the bootstrap part once (DR below): each configuration compiles five programs
        held = boot_jit(key, sim.data, sim.test_features, W, config, retune=False, chunk=3)
        np.testing.assert_allclose(held[0], point, rtol=1e-4, atol=1e-4)
        for b in (1, 2):
            f_b, _ = fit_jit(key, data._replace(weight=W[b]), fixed_s, hyper)
            ref = predict_quality(fixed_s, f_b, standardize(std, sim.test_features))
            # float32 solves compiled differently (batched vs single): agreement to ~1e-5 of the scale.
            np.testing.assert_allclose(held[b], ref, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(ref))))
        retuned = boot_jit(key, sim.data, sim.test_features, W, config, chunk=3)
        assert np.abs(np.asarray(retuned[1:]) - np.asarray(held[1:])).max() > 1e-3  # replicates re-select
