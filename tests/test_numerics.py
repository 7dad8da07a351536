"""Numerics that hold and failures that are attributed: regression tests for poor overlap, constant
sources, extreme feature scales and non-finite stages."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mrjax import MetaRouter
from mrjax.cate import RLearner, SLearner, fit_cate
from mrjax.data import fit_standardizer, paper_like, standardize, scale_constant, scale_degenerate, selection_on_features
from mrjax.learners import Ridge


def _sources(sim):
    X, t, o = (np.asarray(a) for a in (sim.data.features, sim.data.is_gold, sim.data.label))
    g = t == 1
    return X[g], o[g], X[~g], o[~g]


class _NaNClassifier:
    """A 'classifier' whose probabilities are NaN on some rows: a broken nuisance model."""

    task = "classification"

    def hyper(self):
        return {}

    def fit(self, key, X, y, weight, hyper=None):
        return jnp.zeros(())

    def predict(self, params, X):
        return jnp.where(X[:, 0] > 1.0, jnp.nan, 0.3)


@pytest.mark.slow  # compile-heavy: kept out of the fast tier
def test_a_non_finite_stage_is_named_and_the_diagnostics_stay_readable():
    sim = paper_like(jax.random.key(0), n_gold=40, n_preference=200, n_test=5, n_features=6)
    mr = MetaRouter(cate="dr", propensity=_NaNClassifier(), learner=Ridge())
    with pytest.raises(FloatingPointError, match="non-finite values at stage 'propensity'"):
        mr.fit(*_sources(sim))
    assert mr.fit_ is None and mr.info_ is not None
    std = fit_standardizer(sim.data.features, sim.data.weight)  # the learners see standardised features
    bad = int(np.sum(np.asarray(standardize(std, sim.data.features))[:, 0] > 1.0))
    assert 0 < bad < len(sim.data.label)
    assert int(mr.info_.cate.nonfinite["propensity"]) == bad == int(mr.info_.cate.propensity.n_nonfinite)
    assert int(mr.info_.nonfinite["features"]) == 0  # the stages before it were finite


@pytest.mark.slow
def test_a_constant_judge_is_treated_as_constant_and_said_so():
    sim = paper_like(jax.random.key(1), n_gold=60, n_preference=400, n_test=50, n_features=6)
    Xg, rg, Xp, _ = _sources(sim)
    with pytest.warns(RuntimeWarning, match=r"one label source is \(near-\)constant"):
        mr = MetaRouter(learner=Ridge()).fit(Xg, rg, Xp, np.ones(len(Xp)))  # a judge that always says +1
    assert bool(mr.info_.scale_degenerate) and float(mr.info_.scale_constant) == 1.0
    psi = mr.quality_gain(np.asarray(sim.test_features))
    assert np.max(np.abs(psi)) < 10 * np.max(np.abs(rg))  # was ~1e5 with c = sd(r) / rounding residue
    data = sim.data._replace(label=jnp.where(sim.data.is_gold > 0.5, sim.data.label, 1.0))
    assert bool(scale_degenerate(data)) and float(scale_constant(data)) == 1.0
    assert not bool(scale_degenerate(sim.data))


@pytest.mark.slow  # compile-heavy: kept out of the fast tier
def test_standardisation_is_scale_free():
    sim = paper_like(jax.random.key(2), n_gold=60, n_preference=400, n_test=30, n_features=6)
    base = fit_standardizer(sim.data.features, sim.data.weight)
    # A power of two scales exactly: the same bits, mean and scale scaled by it.
    big = fit_standardizer(sim.data.features * 2.0**100, sim.data.weight)
    np.testing.assert_array_equal(np.asarray(big.mean), np.asarray(base.mean) * 2.0**100)
    np.testing.assert_array_equal(np.asarray(big.scale), np.asarray(base.scale) * 2.0**100)
    Xg, rg, Xp, yp = _sources(sim)
    ref = MetaRouter(learner=Ridge()).fit(Xg, rg, Xp, yp).quality_gain(np.asarray(sim.test_features))
    for factor in (1e30, 1e-30):  # float32 squares overflow / underflow at these scales
        mr = MetaRouter(learner=Ridge()).fit(Xg * factor, rg, Xp * factor, yp)
        psi = mr.quality_gain(np.asarray(sim.test_features) * factor)
        np.testing.assert_allclose(psi, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())


@pytest.mark.slow
def test_trimming_leaves_the_rows_outside_the_overlap_out_of_the_bias_fit():
    sim = selection_on_features(jax.random.key(3), n_gold=200, n_preference=800, n_test=5, overlap=2.0, n_features=6)
    p = sim.truth.propensity
    learner = RLearner(propensity=None, outcome=Ridge(), effect=Ridge())
    hyper = learner.hyper()
    _, info0 = fit_cate(jax.random.key(0), sim.data, learner, hyper, known_propensity=p)
    fit, info = fit_cate(jax.random.key(0), sim.data, learner, hyper._replace(trim=jnp.float32(0.1)), known_propensity=p)
    outside = int(np.sum((np.asarray(p) < 0.1) | (np.asarray(p) > 0.9)))
    assert 0 < outside < 1000 and int(info0.n_masked) == 0 and int(info.n_masked) == outside
    # The same final stage by hand: the same folds and m̂, the R pseudo-outcomes, trimmed rows at weight 0.
    from mrjax.cate import fit_keys, r_pseudo_outcome
    from mrjax.data import make_folds
    from mrjax.nuisance import fit_outcome

    k_fold, k_learn = fit_keys(jax.random.key(0))
    folds = make_folds(k_fold, sim.data.is_gold, learner.n_folds)
    m, _ = fit_outcome(k_learn, sim.data, learner.outcome, folds, "all", hyper.outcome)
    pc = jnp.clip(p, 1e-3, 1 - 1e-3)
    pseudo, weight, _ = r_pseudo_outcome(sim.data.label, m, sim.data.is_gold, pc, sim.data.weight, 0.0)
    keep = (pc >= 0.1) & (pc <= 0.9)
    by_hand = learner.effect.fit(k_learn, sim.data.features, jnp.where(keep, pseudo, 0.0), jnp.where(keep, weight, 0.0),
                                 hyper.effect)
    np.testing.assert_allclose(np.asarray(fit.params[0].coef), np.asarray(by_hand.coef), rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # compile-heavy: kept out of the fast tier
def test_overlap_diagnostics_by_source():
    sim = selection_on_features(jax.random.key(4), n_gold=150, n_preference=850, n_test=5, overlap=1.5, n_features=6)
    mr = MetaRouter(cate="dr", learner=Ridge())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mr.fit(*_sources(sim))
    p = mr.info_.cate.propensity
    hist = np.asarray(p.histogram)
    n_gold = int(np.asarray(sim.data.is_gold).sum())
    np.testing.assert_allclose(hist.sum(axis=1), [n_gold, 1000 - n_gold])
    ess = np.asarray(p.ess)
    assert np.all(ess > 1) and ess[0] <= n_gold + 1e-3 and ess[1] <= 1000 - n_gold + 1e-3
    # Known constant propensity: the weights are equal within a source, so each ESS is its row count (whatever
    # the features' relevance: left out, it compiles in half the time).
    known = MetaRouter(cate="dr", learner=Ridge(), propensity="known", relevance=False).fit(*_sources(sim))
    np.testing.assert_allclose(np.asarray(known.info_.cate.propensity.ess), [n_gold, 1000 - n_gold], rtol=1e-4)


def test_s_learner_treatment_column_is_on_the_features_scale():
    sim = paper_like(jax.random.key(5), n_gold=50, n_preference=950, n_test=5, n_features=6)
    fit, _ = fit_cate(jax.random.key(0), sim.data, SLearner(outcome=Ridge()))
    share = 50 / 1000
    np.testing.assert_allclose(np.asarray(fit.params[1]), [share, np.sqrt(share * (1 - share))], rtol=1e-5)


@pytest.mark.slow
def test_fold_systems_are_sums_of_the_other_folds_not_differences():
    """When one fold carries most of the weight, a fold's training Gram as 'total minus own' cancels
    in float32 (it lost positive-definiteness on observational samples); as the sum of the other
    folds' Grams it matches a direct fit on those rows to float32 rounding."""
    from mrjax.data import make_folds

    rng = np.random.default_rng(0)
    n = 3000
    X = jnp.asarray(rng.normal(size=(n, 3)), jnp.float32)
    y = jnp.asarray(rng.normal(size=n), jnp.float32)
    folds = make_folds(jax.random.key(0), jnp.zeros(n), 5)
    weight = jnp.where(folds.fold_id == 0, 1e6, 1.0)  # fold 0 is nearly all of the total
    learner = Ridge(penalty=1e-3)
    pred, _ = jax.jit(learner.crossfit_predict)(jax.random.key(1), X, y, weight, folds)
    direct = []
    fit = jax.jit(learner.fit)  # op by op, five fits cost more than compiling one
    for k in range(5):
        params = fit(jax.random.key(1), X, y, jnp.where(folds.fold_id == k, 0.0, weight))
        direct.append(np.asarray(learner.predict(params, X)))
    direct = np.stack(direct)[np.asarray(folds.fold_id), np.arange(n)]
    rows = np.asarray(folds.fold_id) == 0  # predicted by the fit on the light folds
    np.testing.assert_allclose(np.asarray(pred)[rows], direct[rows], rtol=1e-3, atol=1e-4)


def _psid_like(seed, n=3000):
    """Gold rows where preference rows are rare: propensities from ~1e-16 up, heavy-tailed income-like
    features (the shape of LaLonde's NSW + PSID/CPS samples, generated)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[:, 2] = np.exp(rng.normal(9, 1.2, size=n))
    logit = -9.0 + 8.0 * X[:, 0] - (np.log(X[:, 2]) - 9)
    t = rng.uniform(size=n) < 1 / (1 + np.exp(-logit))
    y = np.where(t, 0.6 * np.tanh(X[:, 0]), 0.6 * np.tanh(X[:, 0]) - 0.5) + 0.5 * rng.normal(size=n)
    return X, t, y, logit


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_psid_like_sample_gives_a_finite_dr_estimate_and_a_converged_propensity(seed):
    X, t, y, logit = _psid_like(seed)
    assert 1 / (1 + np.exp(-logit.min())) < 1e-14 and 50 < t.sum() < 600
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mr = MetaRouter(cate="dr", seed=0).fit(X[t], y[t], X[~t], y[~t])
    assert np.all(np.isfinite(mr.quality_gain(X))) and np.all(np.isfinite(mr.effect(X)))
    assert float(mr.info_.cate.propensity.convergence) < 1e-3
    assert any("overlap" in str(w.message) for w in caught)  # poor overlap is said, not hidden


@pytest.mark.slow  # compile-heavy: kept out of the fast tier
def test_sources_that_do_not_overlap_are_reported_not_silently_nan():
    rng = np.random.default_rng(0)
    # 1,000 rows of 6 features with the overlap-diagnostics test's learners: the same compiled program.
    shift = np.r_[4.0, 0, 0, 0, 0, 0]
    Xg = rng.normal(size=(60, 6)) + shift  # gold queries far from every preference query
    Xp = rng.normal(size=(940, 6)) - shift
    rg, yp = rng.normal(size=60), rng.normal(size=940)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            mr = MetaRouter(cate="dr", learner=Ridge()).fit(Xg, rg, Xp, yp)
        except FloatingPointError as err:  # acceptable: a named stage, diagnostics kept
            assert "at stage '" in str(err)
            return
    assert np.all(np.isfinite(mr.quality_gain(np.r_[Xg, Xp])))
    assert any("0 or 1" in str(w.message) or "overlap poorly" in str(w.message) for w in caught)
