"""The relevance (ARD) kernel ridge: it finds the features that matter, weights behave as the ridge family's,
jit/vmap agree, and a refit with the learned tuning held fixed reproduces the fit."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mrjax.learners import FeatureRelevance, RandomFeatureRidge, RelevanceRidge


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
    fit = jax.jit(learner.fit)  # run op by op, the search costs more than compiling it
    k = jax.random.key(0)
    w = jnp.ones_like(y).at[:30].set(0.0)
    a = fit(k, X, y.at[:30].set(1e3), w)
    b = fit(k, X[30:], y[30:], jnp.ones(170))
    # The same search (sums in another order: float32 rounding carried through the Adam steps) ...
    np.testing.assert_allclose(a.lengthscale, b.lengthscale, rtol=2e-4)
    # ... and, on the same tuning, the same ridge. (Predictions of the two searches themselves differ by more:
    # a small selected penalty amplifies the length-scales' rounding.)
    # A fixed penalty of 1 (well conditioned): the search picked a nearly interpolating one here (condition
    # number ~1e6), where any change in float32 summation order shows at 1e-2.
    fixed = {**learner.hyper(), "lengthscale": a.lengthscale, "penalty": jnp.float32(1.0)}
    np.testing.assert_allclose(learner.predict(fit(k, X, y.at[:30].set(1e3), w, fixed), X),
                               learner.predict(fit(k, X[30:], y[30:], jnp.ones(170), fixed), X), rtol=1e-4, atol=1e-4)

    counts = np.random.default_rng(1).integers(1, 3, size=200)
    rep = np.repeat(np.arange(200), counts)
    c = fit(k, X, y, jnp.asarray(counts, jnp.float32), fixed)
    d = fit(k, X[rep], y[rep], jnp.ones(len(rep)), fixed)
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


# --- The feature relevance a router fit learns once and shares with every model (RouterConfig.relevance) ---

def test_feature_relevance_and_its_switches_refuse_bad_values():
    from mrjax import MetaRouter
    from mrjax.learners import FeatureRelevance
    from mrjax.router import RouterConfig
    from mrjax.sim import StudyConfig

    with pytest.raises(ValueError, match="n_steps must be at least 1"):
        FeatureRelevance(n_steps=0)
    with pytest.raises(ValueError, match="batch_rows must be an integer"):
        FeatureRelevance(batch_rows=512.0)
    with pytest.raises(ValueError, match="learning_rate must be"):
        FeatureRelevance(learning_rate=-0.1)
    with pytest.raises(ValueError, match="held_out must be True or False"):
        FeatureRelevance(held_out=1)
    with pytest.raises(ValueError, match="min_z must be"):
        FeatureRelevance(min_z=float("nan"))
    with pytest.raises(ValueError, match="relevance must be a learners.FeatureRelevance or None"):
        RouterConfig(relevance=True)
    with pytest.raises(ValueError, match="relevance must be True, False or a learners.FeatureRelevance"):
        MetaRouter(relevance="yes")
    with pytest.raises(ValueError, match="quality must be True or False"):
        FeatureRelevance(quality=1)
    with pytest.raises(ValueError, match="relevance must be True, False or a learners.FeatureRelevance"):
        StudyConfig(relevance=1)
    from mrjax.router._fit import default_hyper, learn_relevances
    from mrjax.data import paper_like

    sim = paper_like(jax.random.key(0), n_gold=10, n_preference=30, n_test=5, n_features=8)
    a, b = RouterConfig(relevance=FeatureRelevance()), RouterConfig(relevance=FeatureRelevance(), standardize="common")
    with pytest.raises(ValueError, match="must share standardize, scale and relevance"):
        learn_relevances(jax.random.key(0), sim.data, [a, b], [default_hyper(a), default_hyper(b)])
    # A value sets the search of every method; True is the default value.
    custom = FeatureRelevance(search_features=16, min_z=3.0)
    assert {rc.relevance for rc in StudyConfig(relevance=custom).router_configs()} == {custom}
    assert {rc.relevance for rc in StudyConfig(relevance=True).router_configs()} == {FeatureRelevance()}


@pytest.mark.slow
def test_feature_relevance_finds_the_relevant_features_from_row_batches():
    """n = 3,000 rows, so each of the 40 steps scores a fresh batch of 512: the two features y depends on
    (3 and 11 of 20) still get the two shortest length-scales, on three independent data sets."""
    from mrjax.learners import FeatureRelevance

    fr = FeatureRelevance()
    data = [_two_of_twenty(n=3000, seed=s) for s in range(3)]
    X, y = jnp.stack([d[0] for d in data]), jnp.stack([d[1] for d in data])
    out = jax.jit(jax.vmap(lambda k, X, y: fr.fit(k, X, y, jnp.ones_like(y))))(
        jax.random.split(jax.random.key(0), 3), X, y)
    for e, z in zip(np.asarray(out["lengthscale"]), np.asarray(out["held_out_z"])):
        assert z > fr.min_z  # the held-out half confirms them
        assert set(np.argsort(e)[:2].tolist()) == {3, 11}, np.round(e, 2)
        assert np.min(np.delete(e, [3, 11])) > 2 * max(e[3], e[11])  # and clearly apart from the other 18


@pytest.mark.slow
def test_length_scales_fitted_to_noise_are_rejected_on_held_out_rows_and_leave_the_router_unchanged():
    """A label independent of the features: whatever the search on one half finds, the other half does
    not confirm it (held-out z ≤ 2 on three fixed-key data sets; under the null, z > 2 has probability
    ≈ 2%), so every length-scale is the isotropic one and the router's ψ̂ is the relevance-free one."""
    from mrjax.data import from_arrays
    from mrjax.learners import FeatureRelevance, Ridge
    from mrjax.router import RouterConfig, fit_router, predict_quality

    fr = FeatureRelevance()
    search = jax.jit(fr.fit)  # run op by op, the search costs more than compiling it
    for seed in range(3):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(1200, 20)).astype(np.float32)
        y = rng.normal(size=1200).astype(np.float32)
        out = search(jax.random.key(seed), jnp.asarray(X), jnp.asarray(y), jnp.ones(1200))
        assert float(out["held_out_z"]) <= fr.min_z
        np.testing.assert_array_equal(out["lengthscale"], np.full(20, np.float32(2.0) * np.sqrt(np.float32(20))))
    data = from_arrays(X, (np.arange(1200) < 200).astype(np.float32), y)
    psi = {}
    fit_jit = jax.jit(fit_router, static_argnames="config")
    for relevance in (None, fr):
        rc = RouterConfig(method="meta", quality_learner=Ridge(), relevance=relevance)
        fit = fit_jit(jax.random.key(0), data, rc)[0]
        psi[relevance is None] = np.asarray(predict_quality(rc, fit, jnp.asarray(X[:50])))
    np.testing.assert_allclose(psi[True], psi[False], rtol=1e-6, atol=1e-7)


def test_the_feature_relevance_criterion_is_weighted_gcv():
    """``_gcv`` against a float64 NumPy hat matrix (intercept included, weighted, Kish's effective size)."""
    from mrjax.learners._relevance import _gcv

    rng = np.random.default_rng(1)
    n, d, D = 300, 6, 64
    X = rng.normal(size=(n, d))
    y = np.sin(X[:, 0]) + 0.3 * rng.normal(size=n)
    w, omega, phase = rng.uniform(0.5, 2.0, n), rng.normal(size=(d, D)), rng.uniform(0, 2 * np.pi, D)
    theta = {"log_ell": np.log(np.linspace(0.8, 3.0, d)), "log_g": np.asarray(-3.0)}
    with jax.enable_x64(True):
        value = float(_gcv(theta, *(jnp.asarray(a) for a in (X, y, w, omega, phase))))
    Z = np.sqrt(2.0 / D) * np.cos(X @ (omega / np.exp(theta["log_ell"])[:, None]) + phase)
    Zc = Z - (w @ Z) / w.sum()
    Gc = Zc.T @ (w[:, None] * Zc)
    lam = np.exp(-3.0) * np.trace(Gc) / D + 1e-5 * np.trace(Gc) / D + 1e-12
    H = np.ones((n, 1)) @ w[None, :] / w.sum() + Zc @ np.linalg.solve(Gc + lam * np.eye(D), Zc.T * w[None, :])
    r, df, n_eff = y - H @ y, np.trace(H), w.sum() ** 2 / np.sum(w**2)
    assert df < 0.9 * n_eff
    np.testing.assert_allclose(value, np.sum(w * r**2) / w.sum() / (1 - df / n_eff) ** 2, rtol=1e-9)


@pytest.mark.slow
def test_feature_relevance_ignores_zero_weight_rows_and_vmap_over_weights_equals_a_loop():
    """Rows of zero weight are never drawn into a batch while enough rows have weight, so their labels
    cannot matter (bit for bit); vmapped over weight vectors (bootstrap replicates) equals a loop."""
    from mrjax.learners import FeatureRelevance

    X, y, _ = _two_of_twenty(n=1500)
    fr = FeatureRelevance()
    fit = jax.jit(lambda y, w: fr.fit(jax.random.key(3), X, y, w)["lengthscale"])
    w = jnp.ones_like(y).at[:300].set(0.0)
    np.testing.assert_array_equal(fit(y, w), fit(y.at[:300].set(1e3), w))
    W = jnp.stack([w, jnp.asarray(np.random.default_rng(0).poisson(1.0, 1500), jnp.float32)])
    batched = jax.jit(jax.vmap(fit, in_axes=(None, 0)))(y, W)
    for b in range(2):  # another compiled program: float32 rounding, carried through 40 Adam steps
        np.testing.assert_allclose(batched[b], fit(y, W[b]), rtol=1e-4)


@pytest.mark.slow
def test_each_method_learns_relevance_from_the_labels_it_may_use_and_a_study_shares_one_search():
    """Golden-only's relevance does not see the preference labels, All-Golden's sees the gold labels of every
    row, a Meta-Router's sees both sources; and a study's single shared search gives every method what its
    own search would."""
    from mrjax.data import simulate
    from mrjax.router import fit_router, predict_quality
    from mrjax.sim import StudyConfig, one_run

    config = StudyConfig(n_runs=1, n_gold=40, n_preference=560, n_test=50, n_features_rff=32,
                         methods=("meta_r", "pooled", "golden", "all_golden"), relevance=True)
    key = jax.random.key(5)
    k_sim, k_fit, _ = jax.random.split(key, 3)
    sim = simulate(k_sim, config.n_gold, config.n_preference, config.n_test, config.simulation)
    pref = sim.data.is_gold < 0.5
    fit = jax.jit(fit_router, static_argnames="config")
    ell = lambda data, rc, gl=sim.gold_label: np.asarray(fit(k_fit, data, rc, gold_label=gl)[1].relevance["lengthscale"])  # noqa: E731

    # The study's own configurations, so that the separate fits below reuse these compiled programs.
    rc = dict(zip(config.method_names, config.router_configs()))
    rc["meta"] = rc["meta_r"]
    other_pref = sim.data._replace(label=jnp.where(pref, -sim.data.label, sim.data.label))
    np.testing.assert_array_equal(ell(sim.data, rc["golden"]), ell(other_pref, rc["golden"]))
    np.testing.assert_array_equal(ell(sim.data, rc["all_golden"], sim.gold_label),
                                  ell(other_pref, rc["all_golden"], sim.gold_label))
    assert not np.array_equal(ell(sim.data, rc["all_golden"], sim.gold_label),
                              ell(sim.data, rc["all_golden"], jnp.where(pref, 0.0, sim.gold_label)))
    assert not np.array_equal(ell(sim.data, rc["meta"]), ell(other_pref, rc["meta"]))

    rmse = np.asarray(jax.jit(lambda k: one_run(k, config)[3])(key))
    for m, rc in enumerate(config.router_configs()):
        f, _ = fit(k_fit, sim.data, rc, gold_label=sim.gold_label)
        own = np.sqrt(np.mean((np.asarray(predict_quality(rc, f, sim.test_features)) - np.asarray(sim.test_truth.quality_gain)) ** 2))
        # Separately compiled programs: equal to float32 rounding carried through the search and the fits.
        np.testing.assert_allclose(rmse[m], own, rtol=1e-4, err_msg=config.method_names[m])


@pytest.mark.slow
def test_the_relevance_makes_the_meta_router_more_accurate_on_the_paper_like_simulator():
    """ψ̂ depends on 4 of the 50 features (the bias on 3 more): learning which ones, from both sources'
    labels, lowers the R Meta-Router's ψ̂ RMSE. Paired over 12 fixed-key runs, the mean drop must exceed
    three standard errors of the paired differences (a Monte-Carlo bound, not a tuned constant)."""
    from mrjax.sim import StudyConfig, run_study

    base = StudyConfig(n_runs=12, batch_size=12, methods=("meta_r",), relevance=False)
    off = run_study(jax.random.key(0), base, progress=False).rmse[:, 0]
    on = run_study(jax.random.key(0), StudyConfig(n_runs=12, batch_size=12, methods=("meta_r",), relevance=True),
                   progress=False).rmse[:, 0]
    diff = off - on
    assert diff.mean() > 3 * diff.std(ddof=1) / np.sqrt(len(diff)), (on.mean(), off.mean())


@pytest.mark.slow
def test_feature_relevance_stays_finite_on_a_nearly_noiseless_target_of_discrete_features():
    """8 discrete columns (letter codes) of 384, the rest constant, and a label almost determined by them:
    Adam drives the search towards interpolation, where a float32 Cholesky without a relative floor
    returned NaN length-scales (found through ``mrjax fit --text-column``)."""
    from mrjax.learners import FeatureRelevance

    rng = np.random.default_rng(0)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    texts = [" ".join(rng.choice(words, 3)) for _ in range(400)]
    X = np.zeros((400, 384), np.float32)
    for i, t in enumerate(texts):
        X[i, :8] = (np.frombuffer(t.encode()[:8], np.uint8).astype(np.float32) - 96.0) / 32.0
    X = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
    y = np.array([len(t) / 10.0 for t in texts]) + 0.1 * rng.normal(size=400)
    ell = FeatureRelevance().fit(jax.random.key(0), jnp.asarray(X), jnp.asarray(y, jnp.float32), jnp.ones(400))["lengthscale"]
    assert np.isfinite(np.asarray(ell)).all()


def test_fast_cos_is_within_a_float32_cos_of_the_float64_cosine():
    """The search's cosine (reduction and polynomial, for speed) against float64 NumPy: values and slopes."""
    from mrjax.learners._features import fast_cos

    x = np.concatenate([np.linspace(-1e4, 1e4, 200_001), np.linspace(-7, 7, 10_001)]).astype(np.float32)
    np.testing.assert_allclose(np.asarray(fast_cos(jnp.asarray(x))), np.cos(x.astype(np.float64)), rtol=0, atol=1e-6)
    slope = np.asarray(jax.vmap(jax.grad(fast_cos))(jnp.asarray(x)))
    np.testing.assert_allclose(slope, -np.sin(x.astype(np.float64)), rtol=0, atol=2e-6)


@pytest.mark.parametrize("name", ["_loo", "_gcv"])
def test_the_search_criterion_in_float32_agrees_with_float64_down_to_the_penalty_floor(name):
    """The criteria use fast_cos (and the leave-one-out error one small triangular solve for L⁻¹); at log_g = −30
    the relative floor sets the penalty (condition number 1e5), with a nearly noiseless target and three short ℓ."""
    from mrjax.learners import _relevance

    _loo = getattr(_relevance, name)

    rng = np.random.default_rng(0)
    n, d, D = 512, 50, 64
    X = rng.normal(size=(n, d))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.01 * rng.normal(size=n)
    w, omega, phase = rng.uniform(0.5, 2.0, n), rng.normal(size=(d, D)), rng.uniform(0, 2 * np.pi, D)
    # Float32 rounding carried through a 64 × 64 Cholesky of condition ≤ 1e5 (measured: ≤ 2e-7 in the value,
    # ≤ 8e-7 relative in the gradient); 1e-5 leaves an order of magnitude.
    for log_g in (-2.0, -30.0):
        theta = {"log_ell": np.log(np.where(np.arange(d) < 3, 0.7, 14.0)), "log_g": np.asarray(log_g)}

        def value_and_grad(dtype):
            cast = lambda a: jnp.asarray(a, dtype)  # noqa: E731
            v, g = jax.jit(jax.value_and_grad(_loo))(jax.tree_util.tree_map(cast, theta), *map(cast, (X, y, w, omega, phase)))
            return float(v), np.asarray(g["log_ell"], np.float64)

        v32, g32 = value_and_grad(jnp.float32)
        with jax.enable_x64(True):
            v64, g64 = value_and_grad(jnp.float64)
        assert abs(v32 - v64) <= 1e-5 * v64, (log_g, v32, v64)
        assert np.max(np.abs(g32 - g64)) <= 1e-5 * np.max(np.abs(g64)), (log_g, np.max(np.abs(g32 - g64)))


@pytest.mark.slow
def test_a_meta_routers_quality_model_learns_its_own_relevance_and_the_bias_stages_keep_the_shared_one():
    """ψ depends on x0 and x1, the preference bias on x2 alone. The shared search (observed labels: ψ − Δ on
    preference rows) finds x2; ψ̂'s own search, on the debiased targets, does not, and the bias stages keep the
    shared features (Δ̂ through ``predict_router_bias`` is the Δ̂ that debiased the targets). ``quality=False``
    gives ψ̂ the shared one."""
    from mrjax.cate import RLearner
    from mrjax.data import Dataset
    from mrjax.router import Meta, RouterConfig, default_hyper, fit_router, predict_router_bias
    from mrjax.data._dataset import standardize
    from mrjax.router._fit import fit_targets, prepare

    n, n_gold, d = 4000, 400, 10
    kx, kn = jax.random.split(jax.random.key(3))
    X = jax.random.normal(kx, (n, d))
    psi = jnp.sin(2 * X[:, 0]) + X[:, 1]
    delta = 1.5 * jnp.tanh(2 * X[:, 2])
    t = (jnp.arange(n) < n_gold).astype(jnp.float32)
    label = jnp.where(t > 0.5, psi, psi - delta) + 0.3 * jax.random.normal(kn, (n,))
    data = Dataset(X, t, label, jnp.ones(n))
    config = RouterConfig(method=Meta(RLearner()), relevance=FeatureRelevance())
    fit = jax.jit(fit_router, static_argnames="config")
    f, info = fit(jax.random.key(0), data, config)
    shared, own = np.asarray(info.relevance["lengthscale"]), np.asarray(info.quality_relevance["lengthscale"])
    assert 2 in np.argsort(shared)[:3], shared
    assert set(np.argsort(own)[:2]) == {0, 1} and own[2] > 3 * own[:2].max(), own

    hyper = default_hyper(config)._replace(relevance=info.relevance)
    targets = jax.jit(fit_targets, static_argnames="config")(jax.random.key(0), data, config, hyper)
    prep, _, _ = prepare(jax.random.key(0), data, config, hyper)
    pref = np.asarray(t) < 0.5
    debias = (np.asarray(targets.target) - np.asarray(prep.data.label))[pref]
    # Separately compiled programs agree to float32 rounding (~1e-4); ψ̂'s standardiser would be off by far more.
    np.testing.assert_allclose(np.asarray(predict_router_bias(config, f, X))[pref], debias, atol=1e-3)
    wrong = np.asarray(config.method.predict_bias(f.cate, standardize(f.standardizer, X)))[pref]
    assert np.max(np.abs(wrong - debias)) > 0.05

    off = dataclasses.replace(config, relevance=FeatureRelevance(quality=False))
    f_off, info_off = fit(jax.random.key(0), data, off)
    assert info_off.quality_relevance == {} and f_off.bias_standardizer is None
    np.testing.assert_array_equal(info_off.relevance["lengthscale"], info.relevance["lengthscale"])


@pytest.mark.slow
def test_the_quality_models_own_relevance_makes_the_meta_router_more_accurate_on_the_paper_like_simulator():
    """The paper-like simulator's bias depends on x5, which ψ does not: ψ̂'s own relevance, learned from the
    debiased targets, lowers the R Meta-Router's ψ̂ RMSE against the shared one. Paired over 12 fixed-key runs,
    the mean drop must exceed three standard errors of the paired differences (a Monte-Carlo bound)."""
    from mrjax.sim import StudyConfig, run_study

    rmse = {q: run_study(jax.random.key(0), StudyConfig(n_runs=12, batch_size=12, methods=("meta_r",),
                                                          relevance=FeatureRelevance(quality=q)),
                         progress=False).rmse[:, 0] for q in (False, True)}
    diff = rmse[False] - rmse[True]
    assert diff.mean() > 3 * diff.std(ddof=1) / np.sqrt(len(diff)), (rmse[True].mean(), rmse[False].mean())


def test_an_offset_of_the_features_or_labels_changes_neither_the_length_scales_nor_the_predictions():
    """The ARD kernel is translation-invariant; its random basis is so only in distribution, and a feature
    offset well above the spread (10 here) swung every phase as its length-scale moved: the search lost the
    relevant features (FeatureRelevance fell back to the isotropic kernel; RelevanceRidge missed by ~2).
    Both now search on centred features and labels. Tolerances: the shifted values are stored to ~1e-6
    (features, half an ulp at 10) and ~3e-5 (labels at 10³); 100 Adam steps carry that rounding into the
    length-scales at the 1e-3 level (measured), so 2% of each length-scale and 1% of the labels' spread."""
    X, y, f = _two_of_twenty(n=300)
    w = jnp.asarray(np.random.default_rng(3).poisson(1.0, 300).astype(np.float32))
    shifted = X + 10.0, y + 1e3
    rr = RelevanceRidge()
    base = rr.fit(jax.random.key(2), X, y, w)
    moved = rr.fit(jax.random.key(2), *shifted, w)
    np.testing.assert_allclose(moved.lengthscale, base.lengthscale, rtol=0.02)
    np.testing.assert_allclose(rr.predict(moved, shifted[0]) - 1e3, rr.predict(base, X), atol=0.01 * float(jnp.std(y)))
    fr = FeatureRelevance()
    a, b = fr.fit(jax.random.key(2), X, y, w), fr.fit(jax.random.key(2), *shifted, w)
    assert float(a["held_out_z"]) > 2.0  # the learned length-scales were kept, not the isotropic ones
    np.testing.assert_allclose(b["lengthscale"], a["lengthscale"], rtol=0.02)
