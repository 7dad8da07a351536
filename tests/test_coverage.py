"""Quick coverage checks with fixed keys (the full study is benchmarks/bench_coverage.py)."""
import dataclasses

import numpy as np
import pytest
import jax
import jax.numpy as jnp

from mrjax.cate import RLearner
from mrjax.data import Dataset, paper_like
from mrjax.inference import bootstrap_predict, bootstrap_weights, gold_corrected_value, interval, policy_value
from mrjax.learners import Ridge
from mrjax.router import Meta, RouterConfig, fit_router, predict_quality

RIDGE = Ridge(penalty=1e-3)
LINEAR = RouterConfig(quality_learner=RIDGE, scale="none",
                      method=Meta(RLearner(propensity=None, outcome=RIDGE, effect=RIDGE, n_folds=5)))
BETA, GAMMA = jnp.asarray([1.0, -0.5, 0.25]), jnp.asarray([0.5, 0.3, 0.0])
POINTS = jnp.asarray([[0.0, 0.0, 0.0], [1.0, 0.5, -0.5], [-1.0, 1.0, 0.0], [0.5, -1.5, 1.0]])


def _linear_data(key, n_gold=80, n_pref=320):
    """ψ(x) = x·β, Δ(x) = 0.2 + x·γ, Gaussian noise: every learner in LINEAR is well specified."""
    n = n_gold + n_pref
    kx, ke = jax.random.split(key)
    X = jax.random.normal(kx, (n, 3))
    t = (jnp.arange(n) < n_gold).astype(jnp.float32)
    psi, delta = X @ BETA, 0.2 + X @ GAMMA
    o = jnp.where(t > 0.5, psi, psi - delta) + 0.5 * jax.random.normal(ke, (n,))
    return Dataset(X, t, o, jnp.ones((n,)))


@pytest.mark.slow
def test_bootstrap_interval_coverage_on_a_well_specified_linear_model():
    """Percentile 80% intervals for ψ at 4 points over 40 datasets (B = 200 stratified replicates).

    Datasets are the independent units: the share of covered (dataset, point) pairs has
    sd ≤ √(0.8·0.2/40) = 0.063 even if a dataset's 4 points were perfectly correlated;
    the test allows 3 sd either side of 0.8.
    """
    def one(key):
        k_data, k_w, k_fit = jax.random.split(key, 3)
        data = _linear_data(k_data)
        W = bootstrap_weights(k_w, data.is_gold, 200)
        draws = bootstrap_predict(k_fit, data, POINTS, W, LINEAR, chunk=50)
        fit, _ = fit_router(k_fit, data, LINEAR)
        lo, hi = interval(draws, predict_quality(LINEAR, fit, POINTS), 0.8)
        truth = POINTS @ BETA
        return (truth >= lo) & (truth <= hi)

    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(11), i))(jnp.arange(40))
    covered = np.asarray(jax.jit(jax.vmap(one))(keys))
    assert abs(covered.mean() - 0.8) <= 3 * np.sqrt(0.8 * 0.2 / 40), covered.mean()


@pytest.mark.slow
def test_gold_corrected_value_coverage_and_reference():
    """The gold-corrected 90% policy-value interval covers the true value of the fitted policy.

    Its se bounds the test-set term from above, so coverage should be at least nominal:
    over 40 datasets the share covered has sd √(0.9·0.1/40) = 0.047; the test asks for at
    least 0.9 − 3·0.047.
    """
    config = RouterConfig(quality_learner=Ridge(penalty=10.0),
                          method=Meta(RLearner(outcome=Ridge(penalty=10.0), effect=Ridge(penalty=10.0))))
    w = jnp.asarray([0.0, 0.3])

    def one(key):
        k_sim, k_fit = jax.random.split(key)
        sim = paper_like(k_sim, n_gold=100, n_preference=600, n_test=300)
        v = gold_corrected_value(k_fit, sim.data, sim.test_features, w, config, level=0.9)
        fit, _ = fit_router(jax.random.split(k_fit)[0], sim.data, config)
        truth = policy_value(sim.test_truth.quality_gain, predict_quality(config, fit, sim.test_features), w)
        return (truth >= v.lower) & (truth <= v.upper), v

    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(12), i))(jnp.arange(40))
    covered, v = jax.jit(jax.vmap(one))(keys)
    covered = np.asarray(covered)
    assert covered[:, 0].mean() >= 0.9 - 3 * np.sqrt(0.9 * 0.1 / 40), covered.mean(0)
    assert covered[:, 1].mean() >= 0.9 - 3 * np.sqrt(0.9 * 0.1 / 40), covered.mean(0)

    # Reference for one dataset: the correction by explicit refits, one gold fold left out at a time.
    k_sim, k_fit = jax.random.split(keys[0])
    sim = paper_like(k_sim, n_gold=100, n_preference=600, n_test=300)
    from mrjax.data import fit_standardizer, make_folds, standardize

    k_point, k_fold = jax.random.split(k_fit)
    fit_jit = jax.jit(fit_router, static_argnames="config")  # op by op, six fits cost more than compiling two
    fit, _ = fit_jit(k_point, sim.data, config)
    psi_test = np.asarray(predict_quality(config, fit, sim.test_features))
    folds = np.asarray(make_folds(k_fold, sim.data.is_gold, 5).fold_id)
    gold = np.asarray(sim.data.is_gold) > 0.5
    oof = np.zeros(gold.shape[0])
    # Refits keep the full data's (label-free) feature standardisation, as every replicate does.
    std = fit_standardizer(sim.data.features, sim.data.weight)
    data_std = sim.data._replace(features=standardize(std, sim.data.features))
    config_std = dataclasses.replace(config, standardize=False)
    for k in range(5):
        drop = gold & (folds == k)
        fk, _ = fit_jit(k_point, data_std._replace(weight=jnp.asarray(np.where(drop, 0.0, 1.0), jnp.float32)), config_std)
        oof[drop] = np.asarray(predict_quality(config_std, fk, data_std.features))[drop]
    for j, wj in enumerate([0.0, 0.3]):
        plug = np.mean(np.where(psi_test > wj, psi_test - wj, 0.0))
        corr = np.mean(np.where(oof[gold] > wj, np.asarray(sim.data.label)[gold] - oof[gold], 0.0))
        np.testing.assert_allclose(float(v.estimate[0, j]), plug + corr, rtol=1e-3, atol=1e-4)
