import numpy as np
import pandas as pd
import pytest
import jax
import jax.numpy as jnp

from mrjax.data import (
    from_arrays, from_dataframe, from_sources, make_folds, normalize_scale, paper_like,
    scale_constant, selection_on_features, heteroscedastic,
)


def _arrays(n_gold=5, n_pref=15, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_gold + n_pref, d))
    t = np.r_[np.ones(n_gold), np.zeros(n_pref)]
    o = rng.normal(size=n_gold + n_pref)
    return X, t, o


def test_from_arrays_builds_float32_pytree():
    X, t, o = _arrays()
    d = from_arrays(X, t, o)
    assert d.features.shape == (20, 3) and d.features.dtype == jnp.float32
    assert d.n_gold == 5 and d.n_preference == 15
    np.testing.assert_allclose(d.weight, 1.0)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda X, t, o, w: (X.__setitem__((3, 2), np.nan), (X, t, o, w))[1], "features: 1 non-finite value.*row 3, column 2"),
        (lambda X, t, o, w: (o.__setitem__(7, np.inf), (X, t, o, w))[1], "label: 1 non-finite.*row 7"),
        (lambda X, t, o, w: (X, t, o[:-1], w), "label: expected length 20"),
        (lambda X, t, o, w: (X, np.zeros_like(t), o, w), "gold-standard set is empty"),
        (lambda X, t, o, w: (X, np.ones_like(t), o, w), "preference set is empty"),
        (lambda X, t, o, w: (X, t * 2, o, w), "is_gold: values must be 0 or 1; row 0"),
        (lambda X, t, o, w: (X, t, o, -np.ones(20)), "weight: weights must be non-negative; row 0"),
        (lambda X, t, o, w: (X, t, o, np.zeros(20)), "weight: all weights are zero"),
        (lambda X, t, o, w: (X, t, o, np.r_[np.zeros(5), np.ones(15)]), "every gold-standard row has zero weight"),
        (lambda X, t, o, w: (X[:, 0], t, o, w), r"features: expected shape \(n, d\)"),
    ],
)
def test_bad_input_names_the_problem(mutate, message):
    X, t, o = _arrays()
    args = mutate(X.copy(), t.copy(), o.copy(), None)
    with pytest.raises(ValueError, match=message):
        from_arrays(*args)


def test_from_sources_and_dataframe_agree():
    X, t, o = _arrays()
    a = from_sources(X[:5], o[:5], X[5:], o[5:])
    df = pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=o, source=np.where(t == 1, "gold", "pref"))
    b = from_dataframe(df, ["a", "b", "c"], "label", "source", gold_value="gold")
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_from_dataframe_errors_name_columns():
    X, t, o = _arrays()
    df = pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=o, source=t)
    with pytest.raises(ValueError, match=r"columns not in the DataFrame: \['zz'\]"):
        from_dataframe(df, ["a", "zz"], "label", "source")
    df.loc[4, "b"] = np.nan
    with pytest.raises(ValueError, match="row 4, 'b'"):
        from_dataframe(df, ["a", "b", "c"], "label", "source")
    df["b"] = "text"
    with pytest.raises(ValueError, match="column 'b': expected numbers"):
        from_dataframe(df, ["a", "b", "c"], "label", "source")


def test_from_sources_errors():
    X, t, o = _arrays()
    with pytest.raises(ValueError, match="gold-standard set is empty"):
        from_sources(X[:0], o[:0], X, o)
    with pytest.raises(ValueError, match="gold_features has 3 columns but preference_features has 2"):
        from_sources(X, o, X[:, :2], o)


def _np_quantile_scale(r, y, n=512):
    u = (np.arange(n) + 0.5) / n
    qg = np.sort(r)[np.clip(np.searchsorted(np.arange(1, len(r) + 1) / len(r), u), 0, len(r) - 1)]
    qp = np.sort(y)[np.clip(np.searchsorted(np.arange(1, len(y) + 1) / len(y), u), 0, len(y) - 1)]
    return np.mean(qg * qp) / np.mean(qp * qp)


def test_scale_constants_match_numpy():
    rng = np.random.default_rng(1)
    r, y = rng.normal(0.3, 2.0, 40), rng.normal(-0.1, 0.5, 300)
    d = from_sources(rng.normal(size=(40, 2)), r, rng.normal(size=(300, 2)), y)
    np.testing.assert_allclose(scale_constant(d, "variance"), r.std() / y.std(), rtol=1e-5)
    np.testing.assert_allclose(scale_constant(d, "magnitude"), np.abs(r).mean() / np.abs(y).mean(), rtol=1e-5)
    np.testing.assert_allclose(scale_constant(d, "wasserstein"), _np_quantile_scale(r, y), rtol=1e-5)
    assert float(scale_constant(d, "none")) == 1.0
    scaled, info = normalize_scale(d, "variance")
    np.testing.assert_allclose(np.std(np.asarray(scaled.label)[40:]), r.std(), rtol=1e-4)
    np.testing.assert_array_equal(scaled.label[:40], d.label[:40])
    with pytest.raises(ValueError, match="scale method must be one of"):
        scale_constant(d, "bogus")


def test_wasserstein_recovers_a_pure_rescaling():
    rng = np.random.default_rng(2)
    z = rng.normal(size=2000)
    d = from_sources(np.zeros((1000, 1)), 3.0 * z[:1000], np.zeros((1000, 1)), z[1000:])
    assert abs(float(scale_constant(d, "wasserstein")) - 3.0) < 0.15  # two samples of 1000: sd of the ratio ~ 3*0.03


def test_folds_balanced_and_stratified():
    t = jnp.asarray(np.r_[np.ones(23), np.zeros(104)])
    f = make_folds(jax.random.key(0), t, 5)
    counts = np.bincount(np.asarray(f.fold_id), minlength=5)
    assert counts.max() - counts.min() <= 1
    gold_counts = np.bincount(np.asarray(f.fold_id)[:23], minlength=5)
    assert gold_counts.max() - gold_counts.min() <= 1
    members = np.asarray(f.members)
    for k in range(5):
        rows = members[k][members[k] < 127]
        assert set(rows) == set(np.nonzero(np.asarray(f.fold_id) == k)[0])
    with pytest.raises(ValueError, match="at least 2"):
        make_folds(jax.random.key(0), t, 1)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", [paper_like, selection_on_features, heteroscedastic])
def test_simulators_carry_consistent_truth(simulator):
    sim = simulator(jax.random.key(3), n_gold=200, n_preference=2000, n_test=100)
    tr = sim.truth
    np.testing.assert_allclose(tr.quality_gain - tr.preference_gain, tr.bias, atol=1e-6)
    assert sim.data.features.shape == (2200, 50) and sim.test_features.shape == (100, 50)
    assert np.all((np.asarray(tr.propensity) > 0) & (np.asarray(tr.propensity) < 1))
    gold = np.asarray(sim.data.is_gold) == 1
    np.testing.assert_array_equal(np.asarray(sim.data.label)[gold], np.asarray(sim.gold_label)[gold])
    # Same key, same bits.
    again = simulator(jax.random.key(3), n_gold=200, n_preference=2000, n_test=100)
    np.testing.assert_array_equal(sim.data.label, again.data.label)


def test_selection_design_has_feature_dependent_propensity():
    sim = selection_on_features(jax.random.key(4), n_gold=500, n_preference=4500, overlap=1.5)
    p, x0, t = (np.asarray(a) for a in (sim.truth.propensity, sim.data.features[:, 0], sim.data.is_gold))
    assert np.corrcoef(p, x0)[0, 1] > 0.8
    # E[t] = mean propensity; Bernoulli sd of the mean over 5000 rows is < 0.005, allow 4 sd.
    assert abs(t.mean() - p.mean()) < 0.02
