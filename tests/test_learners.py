"""Reference, jit/vmap and cross-fitting tests of the base learners."""
import dataclasses

import numpy as np
import pytest
import jax
import jax.numpy as jnp
from sklearn.linear_model import LogisticRegression
from sklearn.linear_model import Ridge as SkRidge

from mrjax.data import make_folds
from mrjax.learners import MLP, Logistic, RandomFeatureRidge, Ridge
from mrjax.nuisance import crossfit_predict


def _reg_data(n=300, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 0.5 + 0.3 * rng.normal(size=n)
    w = rng.uniform(0.2, 2.0, size=n)
    return X.astype(np.float32), y.astype(np.float32), w.astype(np.float32)


def test_ridge_unpenalised_equals_numpy_weighted_least_squares():
    X, y, w = _reg_data()
    params = Ridge(penalty=0.0).fit(jax.random.key(0), jnp.asarray(X), jnp.asarray(y), jnp.asarray(w))
    A = np.c_[np.ones(len(X)), X].astype(np.float64)
    sw = np.sqrt(w)
    ref, *_ = np.linalg.lstsq(A * sw[:, None], y * sw, rcond=None)
    np.testing.assert_allclose(params.coef, ref, atol=1e-4)


def test_ridge_penalised_equals_sklearn_with_sample_weight():
    X, y, w = _reg_data(seed=1)
    ours = Ridge(penalty=3.0).fit(jax.random.key(0), jnp.asarray(X), jnp.asarray(y), jnp.asarray(w))
    sk = SkRidge(alpha=3.0).fit(X.astype(np.float64), y, sample_weight=w)
    np.testing.assert_allclose(ours.coef[0], sk.intercept_, atol=1e-4)
    np.testing.assert_allclose(ours.coef[1:], sk.coef_, atol=1e-4)


def test_logistic_matches_sklearn_unpenalised():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 3)).astype(np.float32)
    p = 1 / (1 + np.exp(-(X @ np.array([1.0, -0.5, 0.25]) - 0.3)))
    y = (rng.uniform(size=500) < p).astype(np.float32)
    w = rng.uniform(0.5, 1.5, size=500).astype(np.float32)
    ours = Logistic(penalty=0.0).fit(jax.random.key(0), jnp.asarray(X), jnp.asarray(y), jnp.asarray(w))
    sk = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(X.astype(np.float64), y, sample_weight=w)
    np.testing.assert_allclose(ours.coef[0], sk.intercept_[0], atol=1e-4)
    np.testing.assert_allclose(ours.coef[1:], sk.coef_[0], atol=1e-4)
    assert float(ours.grad_norm) < 1e-5


def test_logistic_separable_data_stays_finite():
    X = jnp.asarray(np.r_[-np.ones(20), np.ones(20)][:, None], jnp.float32)
    y = jnp.asarray(np.r_[np.zeros(20), np.ones(20)], jnp.float32)
    params = Logistic(penalty=0.0).fit(jax.random.key(0), X, y, jnp.ones(40))
    assert np.isfinite(np.asarray(params.coef)).all()
    p = Logistic(penalty=0.0).predict(params, X)
    assert float(p[0]) < 0.01 and float(p[-1]) > 0.99


def _rbf(A, B, ell):
    d2 = ((A[:, None, :] - B[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * ell**2))


@pytest.mark.slow
def test_random_feature_ridge_approaches_exact_kernel_ridge():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 2)).astype(np.float32)
    y = (np.sin(2 * X[:, 0]) + X[:, 1] ** 2).astype(np.float32)
    Xt = rng.normal(size=(100, 2)).astype(np.float32)
    bandwidth, penalty = 0.5, 1.0
    ell = bandwidth * np.sqrt(2)
    # Exact kernel ridge with an unpenalised intercept b: (K + λI) α + b 1 = y, 1ᵀα = 0.
    K = _rbf(X, X, ell).astype(np.float64)
    A = np.block([[K + penalty * np.eye(200), np.ones((200, 1))], [np.ones((1, 200)), np.zeros((1, 1))]])
    sol = np.linalg.solve(A, np.r_[y, 0.0])
    exact = _rbf(Xt, X, ell) @ sol[:200] + sol[200]
    errors = []
    for D in (64, 512, 4096):
        learner = RandomFeatureRidge(n_features=D, bandwidth=bandwidth, penalty=penalty)
        err = [
            np.sqrt(np.mean((np.asarray(learner.predict(learner.fit(jax.random.key(s), jnp.asarray(X), jnp.asarray(y), jnp.ones(200)), jnp.asarray(Xt))) - exact) ** 2))
            for s in range(3)
        ]
        errors.append(np.mean(err))
    assert errors[0] > errors[1] > errors[2]
    # RFF error decays like D^{-1/2}: at D = 4096 it is a few percent of sd(y) (~1).
    assert errors[2] < 0.05


@pytest.mark.slow
def test_mlp_fits_a_smooth_function_and_classifies():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(2000, 2)).astype(np.float32)
    y = np.tanh(2 * X[:, 0]) + 0.1 * rng.normal(size=2000).astype(np.float32)
    mlp = MLP(hidden=(32, 32), steps=800, batch_size=128)
    params = mlp.fit(jax.random.key(0), jnp.asarray(X), jnp.asarray(y), jnp.ones(2000))
    resid = np.asarray(mlp.predict(params, jnp.asarray(X))) - y
    assert np.mean(resid**2) < 0.05 * np.var(y) + 0.01 + 0.02  # noise var 0.01; fit within 5% of var + slack
    assert float(params.loss_trace[-1]) < float(params.loss_trace[0])
    clf = MLP(hidden=(16,), task="classification", steps=500)
    lab = (X[:, 0] > 0).astype(np.float32)
    cp = clf.fit(jax.random.key(1), jnp.asarray(X), jnp.asarray(lab), jnp.ones(2000))
    prob = np.asarray(clf.predict(cp, jnp.asarray(X)))
    assert prob.min() >= 0 and prob.max() <= 1
    assert np.mean((prob > 0.5) == (lab == 1)) > 0.95


def test_mlp_weights_select_rows():
    """Weighted sampling: a model trained with zero weight on half the rows ignores them."""
    X = jnp.asarray(np.linspace(-1, 1, 400)[:, None], jnp.float32)
    y = jnp.where(jnp.arange(400) < 200, 1.0, -1.0)
    w = jnp.where(jnp.arange(400) < 200, 1.0, 0.0)
    mlp = MLP(hidden=(8,), steps=400)
    pred = mlp.predict(mlp.fit(jax.random.key(0), X, y, w), X)
    assert float(jnp.mean(pred[:200])) > 0.8


@pytest.mark.parametrize(
    "learner",
    [Ridge(), dataclasses.replace(RandomFeatureRidge(n_features=64), crossfit_tuning="fold"), Logistic(),
     MLP(hidden=(8,), steps=50)],
)
@pytest.mark.slow
def test_crossfit_prediction_of_row_i_never_used_row_i(learner):
    X, y, w = _reg_data(n=60, d=3, seed=5)
    if learner.task == "classification":
        y = (y > np.median(y)).astype(np.float32)
    X, y, w = jnp.asarray(X), jnp.asarray(y), jnp.asarray(w)
    t = jnp.asarray((np.arange(60) < 15).astype(np.float32))
    folds = make_folds(jax.random.key(1), t, 4)
    crossfit = jax.jit(crossfit_predict, static_argnums=0)  # op by op, the fold fits cost more than compiling them
    base, _, _ = crossfit(learner, jax.random.key(2), X, y, w, folds)
    for i in (0, 17, 59):
        X2 = X.at[i].set(X[i] + 5.0)
        y2 = y.at[i].set(1.0 - y[i] if learner.task == "classification" else y[i] + 100.0)
        pert, _, _ = crossfit(learner, jax.random.key(2), X2, y2, w, folds)
        same_fold = np.asarray(folds.fold_id) == int(folds.fold_id[i])
        # Every row of row i's fold (row i included, at its own new x) is predicted
        # by models that never saw row i: the others' predictions are unchanged.
        others = same_fold.copy()
        others[i] = False
        # The one-pass ridge path subtracts fold Grams from a total that contains the
        # perturbed row (y + 100): float32 rounding leaves ~1e-7 x 100² residue, far
        # below the O(1) change that using row i would cause.
        np.testing.assert_allclose(np.asarray(pert)[others], np.asarray(base)[others], rtol=1e-4, atol=1e-3)
        assert not np.allclose(np.asarray(pert)[~same_fold], np.asarray(base)[~same_fold], atol=1e-6)


def _ridge_np(A, y, w, lam):
    """Weighted ridge in float64 with an unpenalised intercept column A[:, 0]."""
    P = lam * np.eye(A.shape[1])
    P[0, 0] = 0.0
    return np.linalg.solve(A.T @ (w[:, None] * A) + P, A.T @ (w * y))


@pytest.mark.slow
@pytest.mark.parametrize("criterion", ["loo", "gcv", "loo_1se"])
def test_penalty_selection_matches_brute_force(criterion):
    """LOO: every grid penalty's weighted leave-one-row-out error from n explicit refits
    (a weight-3 row — a bootstrap count — leaves as a whole; zero-weight rows do not
    count); GCV: RSS and trace of the hat matrix from explicit fits. The selected penalty
    and coefficients must match the brute-force argmin — for ``loo_1se``, the largest
    penalty within one standard error (of the weighted mean of the n LOO losses) of it."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(40, 10)).astype(np.float32)  # many weak features: a penalty pays
    y = (0.8 * X[:, 0] + 0.5 * X[:, 1] + rng.normal(size=40)).astype(np.float32)
    w = rng.uniform(0.2, 2.0, size=40).astype(np.float32)
    w[3], w[7], w[8] = 3.0, 0.0, 0.0
    grid = (1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0)
    learner = Ridge(penalty_grid=grid, criterion=criterion)
    params = learner.fit(jax.random.key(0), jnp.asarray(X), jnp.asarray(y), jnp.asarray(w))
    Xd, yd, wd = X.astype(np.float64), y.astype(np.float64), w.astype(np.float64)
    A = np.c_[np.ones(40), Xd]
    zbar = wd @ Xd / wd.sum()
    Gc = (Xd - zbar).T @ (wd[:, None] * (Xd - zbar))
    lams = np.asarray(grid) * np.trace(Gc) / 10
    scores, ses = [], []
    for lam in lams:
        if criterion.startswith("loo"):
            err = [(yd[i] - A[i] @ _ridge_np(np.delete(A, i, 0), np.delete(yd, i), np.delete(wd, i), lam)) ** 2
                   for i in range(40)]
            loss = wd * np.asarray(err)
            scores.append(loss.sum() / wd.sum())
            ses.append(np.sqrt(np.sum((loss - scores[-1] * wd) ** 2)) / wd.sum())
        else:
            beta = _ridge_np(A, yd, wd, lam)
            hat = A @ np.linalg.solve(A.T @ (wd[:, None] * A) + lam * np.diag([0.0] + [1.0] * 10), A.T * wd)
            n_eff = wd.sum() ** 2 / (wd**2).sum()
            scores.append(np.sum(wd * (yd - A @ beta) ** 2) / wd.sum() / (1 - np.trace(hat) / n_eff) ** 2)
    # The criterion itself, from the learner's spectral shortcut (float32), at every penalty.
    Z = jnp.asarray(A, jnp.float32)
    wj, yj = jnp.asarray(w), jnp.asarray(y)
    G, b = Z.T @ (wj[:, None] * Z), Z.T @ (wj * yj)
    _, ours, ok, _ = learner._scores(G, b, jnp.sum(wj * yj**2), jnp.sum(wj**2), Z, yj, wj)
    assert bool(np.all(ok))
    np.testing.assert_allclose(ours, scores, rtol=2e-3)
    best = int(np.argmin(scores))
    assert 0 < best < len(grid) - 1, "the test problem should select an interior penalty"
    if criterion == "loo_1se":
        within = np.flatnonzero(np.asarray(scores) <= scores[best] + ses[best])
        assert within.max() > best, "the one-SE rule should pick a larger penalty here"
        best = int(within.max())
    np.testing.assert_allclose(float(params.penalty), lams[best], rtol=1e-4)
    np.testing.assert_allclose(params.coef, _ridge_np(A, yd, wd, lams[best]), rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_shared_crossfit_tuning_applies_the_full_data_choice_to_every_fold():
    X, y, w = (jnp.asarray(a) for a in _reg_data(n=120, d=3, seed=12))
    folds = make_folds(jax.random.key(0), jnp.zeros(120), 4)
    shared = RandomFeatureRidge(n_features=32)
    per_fold = dataclasses.replace(shared, crossfit_tuning="fold")
    pred, _, used = crossfit_predict(shared, jax.random.key(1), X, y, w, folds)
    full = shared.fit(jax.random.key(1), X, y, w)
    # The relative choice g = λ / (tr(G_c)/p) of the full-data fit, rescaled to each fold's
    # training Gram, is the penalty every fold used.
    Z = np.asarray(jnp.concatenate([jnp.ones((120, 1)), shared.features.apply(full.features, X)], 1), np.float64)

    def scale(wk):
        wk = np.asarray(wk, np.float64)
        zbar = wk @ Z[:, 1:] / wk.sum()
        return np.sum(wk[:, None] * (Z[:, 1:] - zbar) ** 2) / 32

    g = float(full.penalty) / scale(w)
    held = np.asarray(folds.held_out())
    expected = [g * scale(np.where(held[k], 0.0, w)) for k in range(4)]
    np.testing.assert_allclose(used["penalty"], expected, rtol=1e-3)
    # With those penalties held fixed, the per-fold path reproduces the predictions.
    fixed = dataclasses.replace(shared, penalty_grid=None)
    again, _, _ = crossfit_predict(fixed, jax.random.key(1), X, y, w, folds, used)
    np.testing.assert_allclose(again, pred, rtol=1e-4, atol=1e-4)
    # Selecting per fold is a different (valid) estimator, not a relabelling.
    _, _, used_fold = crossfit_predict(per_fold, jax.random.key(1), X, y, w, folds)
    assert used_fold["penalty"].shape == (4,)
    with pytest.raises(ValueError, match="crossfit_tuning must be"):
        Ridge(crossfit_tuning="each")
    with pytest.raises(ValueError, match="criterion must be"):
        Ridge(criterion="aic")
    with pytest.raises(ValueError, match="penalty must be a number or one of"):
        RandomFeatureRidge(penalty="lo")


@pytest.mark.slow
def test_ridge_one_pass_crossfit_equals_generic_fold_fits():
    X, y, w = (jnp.asarray(a) for a in _reg_data(n=103, d=3, seed=6))
    t = jnp.asarray((np.arange(103) < 20).astype(np.float32))
    folds = make_folds(jax.random.key(0), t, 5)
    learner = RandomFeatureRidge(n_features=32, penalty=0.5)
    fast, _, _ = jax.jit(crossfit_predict, static_argnums=0)(learner, jax.random.key(1), X, y, w, folds)
    # Generic path: one fit per fold with held-out rows weighted zero, same feature draw.
    slow = np.zeros(103)
    fit = jax.jit(learner.fit)  # op by op, five fits cost more than compiling one
    for k in range(5):
        wk = jnp.where(folds.fold_id == k, 0.0, w)
        params = fit(jax.random.key(1), X, y, wk)
        pred = np.asarray(learner.predict(params, X))
        slow[np.asarray(folds.fold_id) == k] = pred[np.asarray(folds.fold_id) == k]
    np.testing.assert_allclose(fast, slow, rtol=1e-3, atol=1e-3)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="GPU libraries pick kernels by batch shape")
def test_vmapped_crossfit_bits_do_not_depend_on_the_batch():
    # A study vmaps a batch of runs' cross-fits; a run's bits must not depend on its companions. The folds'
    # training moments were a product with a 0/1 fold matrix whose free dimensions held the batch: with 257
    # random features the second run of a batch of two rounded differently than in a batch of four (4.5e-6).
    data = [_reg_data(n=200, d=4, seed=s) for s in range(4)]
    X, y, w = (jnp.asarray(np.stack(a)) for a in zip(*data))
    folds = make_folds(jax.random.key(0), jnp.zeros(200), 5)
    learner = RandomFeatureRidge()  # the default 256 features
    batch = jax.jit(jax.vmap(lambda X, y, w: crossfit_predict(learner, jax.random.key(1), X, y, w, folds)[0]))
    four = np.asarray(batch(X, y, w))
    np.testing.assert_array_equal(np.asarray(batch(X[:2], y[:2], w[:2])), four[:2])
    np.testing.assert_array_equal(np.asarray(batch(X[1:4], y[1:4], w[1:4])), four[1:4])


@pytest.mark.slow
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="counts LAPACK calls of the CPU backend")
def test_crossfit_and_fit_on_the_same_rows_share_one_eigendecomposition():
    # A study fits a cross-fitted nuisance and another method's model on the same rows;
    # with _direct_moments the all-rows moments are built by one expression, so under jit
    # one eigendecomposition serves both (the sum of fold Grams needs two).
    X, y, w = (jnp.asarray(a) for a in _reg_data(n=120, d=3, seed=3))
    folds = make_folds(jax.random.key(0), jnp.zeros(120), 4)
    learner = dataclasses.replace(RandomFeatureRidge(n_features=16), _direct_moments=True)

    def both(X, y, w):
        pred, _, _ = crossfit_predict(learner, jax.random.key(1), X, y, w, folds)
        return pred, learner.fit(jax.random.key(1), X, 2.0 * y, w).coef

    hlo = jax.jit(both).lower(X, y, w).compile().as_text()
    assert hlo.count('custom_call_target="lapack_ssyevd') == 1
    # The default (one pass: the all-rows Gram as the sum of the folds') is the same
    # estimator; in float64, where the two sums' rounding is negligible, equal to 1e-8.
    folds_sum = dataclasses.replace(learner, _direct_moments=False)
    with jax.enable_x64(True):
        X64, y64, w64 = (jnp.asarray(np.asarray(a), jnp.float64) for a in (X, y, w))
        a, _, used_a = crossfit_predict(folds_sum, jax.random.key(1), X64, y64, w64, folds)
        b, _, used_b = crossfit_predict(learner, jax.random.key(1), X64, y64, w64, folds)
    assert a.dtype == jnp.float64
    np.testing.assert_allclose(used_a["penalty"], used_b["penalty"], rtol=1e-12)  # the same grid choice
    np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-8)

@pytest.mark.slow
@pytest.mark.parametrize("learner", [Ridge(), RandomFeatureRidge(n_features=32), Logistic(), MLP(hidden=(8,), steps=30)])
def test_jit_equals_eager_and_same_key_same_bits(learner):
    X, y, w = (jnp.asarray(a) for a in _reg_data(n=80, seed=7))
    if learner.task == "classification":
        y = (y > 0).astype(jnp.float32)
    eager = learner.predict(learner.fit(jax.random.key(0), X, y, w), X)
    jitted = jax.jit(lambda k, X, y, w: learner.predict(learner.fit(k, X, y, w), X))
    a, b = jitted(jax.random.key(0), X, y, w), jitted(jax.random.key(0), X, y, w)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, eager, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("learner", [Ridge(penalty=0.3), Logistic(), MLP(hidden=(8,), steps=30)])
def test_vmap_over_weights_equals_loop(learner):
    X, y, _ = (jnp.asarray(a) for a in _reg_data(n=80, seed=8))
    if learner.task == "classification":
        y = (y > 0).astype(jnp.float32)
    W = jax.random.dirichlet(jax.random.key(1), jnp.ones(80), (4,)) * 80
    f = lambda w: learner.predict(learner.fit(jax.random.key(0), X, y, w), X)
    batched = jax.jit(jax.vmap(f))(W)
    looped = jnp.stack([jax.jit(f)(W[b]) for b in range(4)])
    np.testing.assert_allclose(batched, looped, rtol=1e-4, atol=1e-4)


def test_vmap_over_penalty_hyper():
    X, y, w = (jnp.asarray(a) for a in _reg_data(n=80, seed=9))
    learner = Ridge()
    pens = jnp.asarray([0.0, 1.0, 100.0])
    coefs = jax.vmap(lambda p: learner.fit(jax.random.key(0), X, y, w, {"penalty": p}).coef)(pens)
    norms = np.linalg.norm(np.asarray(coefs)[:, 1:], axis=1)
    assert norms[0] > norms[1] > norms[2]


def test_second_call_with_new_values_does_not_recompile():
    learner = RandomFeatureRidge(n_features=16)
    traces = []

    @jax.jit
    def fit_predict(k, X, y, w, hyper):
        traces.append(1)
        return learner.predict(learner.fit(k, X, y, w, hyper), X)

    X, y, w = (jnp.asarray(a) for a in _reg_data(n=50, seed=10))
    fit_predict(jax.random.key(0), X, y, w, learner.hyper())
    fit_predict(jax.random.key(1), X + 1.0, y * 2, w * 0.5, {"penalty": jnp.float32(5.0), "bandwidth": jnp.float32(0.3)})
    assert len(traces) == 1


def test_shape_errors_at_trace_time():
    X, y, w = (jnp.asarray(a) for a in _reg_data(n=50))
    with pytest.raises(ValueError, match=r"y: expected shape \(50,\)"):
        Ridge().fit(jax.random.key(0), X, y[:10], w)
    with pytest.raises(ValueError, match=r"weight: expected shape \(50,\)"):
        Logistic().fit(jax.random.key(0), X, (y > 0).astype(jnp.float32), w[:, None])
    with pytest.raises(ValueError, match="MLP task must be"):
        MLP(task="ranking")


def _logloss(X, y, w, intercept, coef, penalty):
    eta = intercept + X.astype(np.float64) @ np.asarray(coef, np.float64)
    return (np.sum(w * (np.logaddexp(0.0, eta) - y * eta)) + 0.5 * penalty * np.sum(np.asarray(coef, np.float64) ** 2)) / w.sum()


@pytest.mark.parametrize("design", ["quasi_separable", "rare_and_extreme"])
def test_logistic_reaches_sklearns_optimum_on_hard_propensities(design):
    """Damped Newton reaches the penalised optimum where overlap is poor: the objective within 1e-3
    (per unit weight) of scikit-learn's on the same rows, weights and penalty, and converged."""
    rng = np.random.default_rng(3)
    n = 4000
    X = rng.normal(size=(n, 4)).astype(np.float32)
    if design == "quasi_separable":  # labels almost a step in x0: the MLE runs away, the penalty holds it
        logit = 12.0 * X[:, 0] + 0.5 * X[:, 1]
    else:  # a few % treated, propensities from ~1e-16 up: the PSID/CPS-like shape of observational samples
        logit = -9.0 + 6.0 * X[:, 0] + 2.0 * X[:, 1] ** 2
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    w = np.ones(n, np.float32)
    penalty = 1e-2
    ours = Logistic(penalty=penalty).fit(jax.random.key(0), jnp.asarray(X), jnp.asarray(y), jnp.asarray(w))
    sk = LogisticRegression(C=1 / penalty, tol=1e-12, max_iter=100_000).fit(X.astype(np.float64), y)
    f_ours = _logloss(X, y, w, float(ours.coef[0]), np.asarray(ours.coef[1:]), penalty)
    f_sk = _logloss(X, y, w, sk.intercept_[0], sk.coef_[0], penalty)
    assert f_ours <= f_sk + 1e-3, (f_ours, f_sk)
    assert float(ours.grad_norm) < 1e-3


def _offset_data(n=300, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (np.sin(2 * X[:, 0]) + X[:, 1] * (X[:, 2] > 0) + 0.1 * rng.normal(size=n)).astype(np.float32)
    return X, y, rng.poisson(1.0, n).astype(np.float32)


@pytest.mark.parametrize("learner, x_offset", [(Ridge(penalty=1.0), 1e3), (RandomFeatureRidge(), None),
                                               (Logistic(), 1e3)], ids=["ridge", "rff", "logistic"])
def test_an_offset_far_above_the_spread_leaves_the_fit_unchanged(learner, x_offset):
    """A label offset of 10³ (a random-feature basis: of the labels only; its phases are uniform, so a
    feature offset only redraws it) and a feature offset of 10³ give the same predictions, less the offset,
    within 1% of the labels' spread. Float32 stores the shifted values to ~3e-5 (half a unit in the last
    place at 10³), which a smoother whose rows' absolute weights sum to O(10) turns into ~1e-3; before the
    fits took the weighted means out first, Σ w y² − Σw·ȳ² cancelled and the random-feature ridge missed by
    ~10 at 10³ (~200 at 10⁴), the ridge on shifted features by ~1, and the logistic fit gave NaN."""
    X, y, w = _offset_data()
    if learner.task == "classification":
        y = (y > np.median(y)).astype(np.float32)
    fit = lambda X_, y_: np.asarray(learner.predict(learner.fit(jax.random.key(1), jnp.asarray(X_), jnp.asarray(y_),
                                                                jnp.asarray(w)), jnp.asarray(X_)))
    base = fit(X, y)
    if learner.task == "regression":
        np.testing.assert_allclose(fit(X, y + np.float32(1e3)) - 1e3, base, atol=0.01 * y.std())
    if x_offset is not None:
        np.testing.assert_allclose(fit(X + np.float32(x_offset), y), base, atol=0.01 * y.std())


@pytest.mark.slow
def test_the_mlp_fits_shifted_labels_and_features_as_well_as_centred_ones():
    """The MLP standardises its features and labels (weighted), so a label offset of 10³ or features offset
    by 10³ train the same network up to float32 rounding. Stochastic training turns that rounding into
    different weights (predictions ~0.15 apart), so the check is on accuracy: on each of 3 keys the
    shifted fits' RMSE within 10% of the centred fit's, about the spread of the RMSE between keys (8%,
    measured); paired differences were below 3%. The raw fit's RMSE was 120× the labels' spread at the
    label offset and the spread itself at the feature offset."""
    X, y, w = _offset_data()
    learner = MLP()

    def rmse(k, dx, dy):
        params = learner.fit(jax.random.key(k), jnp.asarray(X + np.float32(dx)), jnp.asarray(y + np.float32(dy)), jnp.asarray(w))
        return float(np.sqrt(np.mean((np.asarray(learner.predict(params, jnp.asarray(X + np.float32(dx)))) - dy - y) ** 2)))

    for k in range(3):
        base = rmse(k, 0.0, 0.0)
        assert abs(rmse(k, 0.0, 1e3) - base) < 0.1 * base
        assert abs(rmse(k, 1e3, 0.0) - base) < 0.1 * base
