"""``Auto``: the choice is the candidate with the smallest cross-validated loss (checked against the losses
computed by hand), it is made inside one compiled program (vmap = loop), reported, and held by a refit."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mrjax.data._folds import make_folds
from mrjax.learners import Auto, GradientBoostedTrees, Logistic, Ridge
from mrjax.learners._base import used_hyper
from mrjax.learners._crossfit import crossfit_predict

CANDIDATES = (Ridge(penalty=1.0), GradientBoostedTrees(n_trees=30, depth=3, n_bins=16))


def _data(kind, n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    if kind == "linear":
        y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=n)
    else:  # a step: trees' home ground
        y = np.where(X[:, 0] > 0.2, 3.0, -1.0) + 0.1 * rng.normal(size=n)
    return jnp.asarray(X), jnp.asarray(y.astype(np.float32))


@pytest.mark.slow  # compile-heavy; the fast tier keeps the scoring-weight and cross-fitting checks of the same losses
@pytest.mark.parametrize("kind, expected", [("linear", 0), ("step", 1)])
def test_the_choice_is_the_smallest_hand_computed_cross_validated_loss(kind, expected):
    X, y = _data(kind)
    w = jnp.asarray(np.random.default_rng(2).integers(0, 3, size=300), jnp.float32)
    auto = Auto(CANDIDATES)
    key = jax.random.key(0)
    p = jax.jit(auto.fit)(key, X, y, w)
    # The same folds and keys by hand: each candidate's out-of-fold squared error, weighted.
    k_fold, k_score, _ = jax.random.split(key, 3)
    folds = make_folds(k_fold, (w > 0).astype(jnp.float32), auto.n_folds)
    keys = jax.random.split(k_score, 2)
    by_hand = [float(np.sum(np.asarray(w) * (np.asarray(crossfit_predict(c, k, X, y, w, folds)[0]) - np.asarray(y)) ** 2)
                     / np.sum(np.asarray(w))) for c, k in zip(CANDIDATES, keys)]
    np.testing.assert_allclose(p.cv_loss, by_hand, rtol=1e-4)
    assert int(p.choice) == int(np.argmin(by_hand)) == expected
    # Prediction is the chosen member's.
    chosen = CANDIDATES[expected]
    np.testing.assert_allclose(auto.predict(p, X), chosen.predict(p.members[expected], X), rtol=1e-6, atol=1e-6)


@pytest.mark.slow  # compile-heavy: kept out of the fast tier
def test_scoring_weight_restricts_the_loss_to_its_rows():
    """ψ̂'s candidates are scored on held-out gold rows: rows outside ``score_weight`` may carry any label's
    error without moving the losses' denominators; here the score rows are the first 150."""
    X, y = _data("step")
    cheap = (Ridge(penalty=1.0), GradientBoostedTrees(n_trees=5, depth=2, n_bins=8))
    auto = Auto(cheap)
    s = jnp.zeros(300).at[:150].set(1.0)
    p = auto.fit(jax.random.key(0), X, y, jnp.ones(300), score_weight=s)
    k_fold, k_score, _ = jax.random.split(jax.random.key(0), 3)
    folds = make_folds(k_fold, s, auto.n_folds)
    keys = jax.random.split(k_score, 2)
    by_hand = [float(np.mean((np.asarray(crossfit_predict(c, k, X, y, jnp.ones(300), folds)[0]) - np.asarray(y))[:150] ** 2))
               for c, k in zip(cheap, keys)]
    np.testing.assert_allclose(p.cv_loss, by_hand, rtol=1e-4)


@pytest.mark.slow
def test_vmap_equals_a_loop_and_a_refit_holds_the_choice():
    X, y = _data("step")
    auto = Auto(CANDIDATES)
    k = jax.random.key(0)
    W = jax.random.poisson(jax.random.key(1), 1.0, (2, 300)).astype(jnp.float32)
    fit = jax.jit(lambda w: auto.fit(k, X, y, w))
    batched = jax.vmap(fit)(W)
    for b in range(2):
        eager = auto.fit(k, X, y, W[b])
        assert int(batched.choice[b]) == int(eager.choice)
        np.testing.assert_allclose(batched.cv_loss[b], eager.cv_loss, rtol=1e-4)
        used = used_hyper(auto.hyper(), eager)
        assert set(used) == {"candidates", "choice", "cv_loss"}
        again = jax.jit(lambda w, h: auto.fit(k, X, y, w, h))(W[b], used)
        assert int(again.choice) == int(eager.choice)
        np.testing.assert_allclose(auto.predict(again, X), auto.predict(eager, X), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_classification_candidates_are_scored_by_log_loss_and_tasks_must_agree():
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.normal(size=(400, 3)).astype(np.float32))
    t = jnp.asarray((rng.random(400) < 1 / (1 + np.exp(-2 * np.asarray(X[:, 0])))).astype(np.float32))
    auto = Auto((Logistic(penalty=1.0), GradientBoostedTrees(n_trees=30, depth=2, task="classification")))
    assert auto.task == "classification"
    p = auto.fit(jax.random.key(0), X, t, jnp.ones(400))
    assert int(p.choice) == 0  # the true model is logistic in x0
    # A log-loss: both finite and near the entropy of the true probabilities (~0.45 here), far below log 2.
    assert np.all(np.asarray(p.cv_loss) < 0.6) and np.all(np.asarray(p.cv_loss) > 0.3)
    pr = np.asarray(auto.predict(p, X))
    assert ((pr > 0) & (pr < 1)).all()
    with pytest.raises(ValueError, match="share one task"):
        Auto((Ridge(), Logistic()))


@pytest.mark.slow  # compile-heavy: kept out of the fast tier
def test_cross_fitted_choice_uses_the_out_of_fold_predictions():
    """As a nuisance: the out-of-fold predictions returned are the chosen candidate's own."""
    X, y = _data("linear")
    auto = Auto(CANDIDATES)
    w = jnp.ones(300)
    folds = make_folds(jax.random.key(3), w, 5)
    pred, _, used = crossfit_predict(auto, jax.random.key(4), X, y, w, folds)
    keys = jax.random.split(jax.random.key(4), 2)
    own = [crossfit_predict(c, k, X, y, w, folds)[0] for c, k in zip(CANDIDATES, keys)]
    c = int(used["choice"])
    assert c == 0
    np.testing.assert_allclose(pred, own[c], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(used["cv_loss"], [float(jnp.mean((o - y) ** 2)) for o in own], rtol=1e-5)
    # Held fixed, the same predictions.
    again, _, _ = crossfit_predict(auto, jax.random.key(4), X, y, w, folds, used)
    np.testing.assert_allclose(again, pred, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_the_facade_reports_each_models_choice_and_a_saved_router_keeps_it(tmp_path):
    """``MetaRouter`` with an ``Auto`` learner: ψ̂, the bias learner's outcome and effect models each choose;
    ``summary()`` names the choices; a saved router predicts the same after loading. ``"auto"`` by name
    builds ``Auto`` over ``AUTO_CANDIDATES`` for the regressors and the propensity."""
    from mrjax import MetaRouter
    from mrjax.data import paper_like
    from mrjax.learners import AUTO_CANDIDATES, RandomFeatureRidge, RelevanceRidge

    sim = paper_like(jax.random.key(0), n_gold=100, n_preference=400, n_test=50)
    X, label = np.asarray(sim.data.features), np.asarray(sim.data.label)
    gold = np.asarray(sim.data.is_gold) == 1
    auto = Auto((Ridge(penalty=10.0), RandomFeatureRidge()))
    r = MetaRouter(cate="dr", learner=auto, relevance=False, seed=0).fit(  # relevance: not the claim, half the compile
        X[gold], label[gold], X[~gold], label[~gold])
    s = r.summary()["value"]
    # each candidate by its own name (the random-feature ridge is not a second "Ridge"); the choice is the smaller loss
    losses = dict(part.rsplit(" ", 1) for part in s["quality cv losses"].split(", "))
    assert list(losses) == ["Ridge", "RandomFeatureRidge"]
    assert s["quality learner"] == "Auto → " + min(losses, key=lambda k: float(losses[k]))
    assert s["outcome learners"].count("Auto → ") == 2  # μ₁ and μ₀
    assert s["effect learners"].startswith("Auto → ")
    q = np.asarray(sim.test_features)
    r.save(tmp_path / "router")
    np.testing.assert_array_equal(MetaRouter.load(tmp_path / "router").quality_gain(q), r.quality_gain(q))

    built = MetaRouter(learner="auto", propensity="auto")
    built._build()
    assert isinstance(built.config.quality_learner, Auto)
    assert [type(c).__name__ for c in built.config.quality_learner.candidates] == ["Ridge", "RelevanceRidge",
                                                                                 "GradientBoostedTrees"]
    assert len(AUTO_CANDIDATES["regression"]) == 3 and isinstance(built.config.quality_learner.candidates[1], RelevanceRidge)
    assert built.config.method.cate.propensity.task == "classification"
    with pytest.raises(ValueError, match="learner"):
        MetaRouter(learner="trees")._build()
