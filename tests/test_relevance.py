"""The relevance (ARD) kernel ridge: it finds the features that matter, weights behave as the ridge family's,
jit/vmap agree, and a refit with the learned tuning held fixed reproduces the fit."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mrjax.learners import RandomFeatureRidge, RelevanceRidge


def _two_of_twenty(n=500, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 20)).astype(np.float32)
    f = np.sin(2 * X[:, 3]) + X[:, 11] ** 2 / 2 - X[:, 3] * X[:, 11] / 2
    return jnp.asarray(X), jnp.asarray((f + 0.3 * rng.normal(size=n)).astype(np.float32)), f


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_two_relevant_features_get_the_two_shortest_lengthscales(seed):
    """y depends on features 3 and 11 of 20 (a sine, a square and their product, noise sd 0.3, n = 500)."""
    X, y, f = _two_of_twenty(seed=seed)
    learner = RelevanceRidge()
    p = jax.jit(learner.fit)(jax.random.key(seed), X, y, jnp.ones_like(y))
    shortest = set(np.argsort(np.asarray(p.lengthscale))[:2].tolist())
    assert shortest == {3, 11}, np.round(np.asarray(p.lengthscale), 2)
    # ... and that is what makes it accurate: the isotropic kernel weights all 20 alike.
    Xt, _, ft = _two_of_twenty(n=2000, seed=100 + seed)
    iso = RandomFeatureRidge()
    rmse_ard = np.sqrt(np.mean((np.asarray(learner.predict(p, Xt)) - ft) ** 2))
    rmse_iso = np.sqrt(np.mean((np.asarray(iso.predict(iso.fit(jax.random.key(seed), X, y, jnp.ones_like(y)), Xt)) - ft) ** 2))
    assert rmse_ard < 0.5 * rmse_iso, (rmse_ard, rmse_iso)


@pytest.mark.slow  # six compilations of the search and the solve (~17 s); the fast tier stays under two minutes
def test_zero_weight_is_a_dropped_row_and_integer_weights_are_repeated_rows_with_the_tuning_fixed():
    """Zero weight drops a row from the search and the fit alike. The leave-one-out criterion leaves all of a
    row's weight out together (a bootstrap count is one row), so integer weights equal repeated rows once the
    learned tuning is held fixed — the closed-form ridge then sees the same moments."""
    X, y, _ = _two_of_twenty(n=200)
    learner = RelevanceRidge(n_steps=5)  # the claim is step by step: five steps show it as well as a hundred
    k = jax.random.key(0)
    w = jnp.ones_like(y).at[:30].set(0.0)
    a = learner.fit(k, X, y.at[:30].set(1e3), w)
    b = learner.fit(k, X[30:], y[30:], jnp.ones(170))
    # The same search (sums in another order: float32 rounding carried through the Adam steps) ...
    np.testing.assert_allclose(a.lengthscale, b.lengthscale, rtol=2e-4)
    # ... and, on the same tuning, the same ridge. (Predictions of the two searches themselves differ by more:
    # a small selected penalty amplifies the length-scales' rounding.)
    # A fixed penalty of 1 (well conditioned): the search picked a nearly interpolating one here (condition
    # number ~1e6), where any change in float32 summation order shows at 1e-2.
    fixed = {**learner.hyper(), "lengthscale": a.lengthscale, "penalty": jnp.float32(1.0)}
    np.testing.assert_allclose(learner.predict(learner.fit(k, X, y.at[:30].set(1e3), w, fixed), X),
                               learner.predict(learner.fit(k, X[30:], y[30:], jnp.ones(170), fixed), X), rtol=1e-4, atol=1e-4)

    counts = np.random.default_rng(1).integers(1, 3, size=200)
    rep = np.repeat(np.arange(200), counts)
    c = learner.fit(k, X, y, jnp.asarray(counts, jnp.float32), fixed)
    d = learner.fit(k, X[rep], y[rep], jnp.ones(len(rep)), fixed)
    np.testing.assert_allclose(learner.predict(c, X), learner.predict(d, X), rtol=1e-3, atol=1e-3)


@pytest.mark.slow  # compile-heavy (eager and jitted searches); the fast tier keeps the weight test
def test_jit_equals_eager_vmap_equals_a_loop_refit_with_used_tuning_reproduces_and_numbers_do_not_recompile():
    from mrjax.learners._base import used_hyper

    X, y, _ = _two_of_twenty(n=200)
    learner = RelevanceRidge(n_steps=20)
    k = jax.random.key(0)
    W = jax.random.poisson(jax.random.key(1), 1.0, (2, 200)).astype(jnp.float32)
    fit = jax.jit(lambda w, h: learner.fit(k, X, y, w, h))
    h = learner.hyper()
    batched = jax.vmap(lambda w: fit(w, h))(W)
    for b in range(2):
        eager = learner.fit(k, X, y, W[b])
        # The same search and penalty (fused vs unfused float32 arithmetic through 20 Adam steps) ...
        np.testing.assert_allclose(batched.lengthscale[b], eager.lengthscale, rtol=1e-3)
        np.testing.assert_allclose(batched.penalty[b], eager.penalty, rtol=1e-3)
        # ... and a refit on the tuning the fit reports reproduces it exactly (the same solve).
        again = learner.fit(k, X, y, W[b], used_hyper(h, eager))
        np.testing.assert_array_equal(learner.predict(again, X), learner.predict(eager, X))
    fit(W[0], h)
    size = fit._cache_size()
    fit(W[0], {"bandwidth": jnp.float32(1.0), "learning_rate": jnp.float32(0.1)})
    assert fit._cache_size() == size
