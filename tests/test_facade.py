"""The facade's user conventions: pandas in → pandas out, summary, predict, one kept bootstrap."""
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from conftest import labelled_frame

import mrjax.api as api
from mrjax import MetaRouter, Ridge
from mrjax.inference import bootstrap_predict, bootstrap_weights


@pytest.fixture(scope="module")
def fitted():
    F, label, gold = labelled_frame()
    # Relevance off: these tests are about the facade's conventions, and a fit without it compiles in half the time.
    router = MetaRouter(learner=Ridge(penalty=0.5), relevance=False, progress=False)
    return router.fit(F[gold], label[gold], F[~gold], label[~gold]), F


def test_dataframes_in_pandas_out_with_the_index_and_columns_by_name(fitted):
    router, F = fitted
    assert router.feature_names_in_ == list(F.columns) and router.n_features_in_ == 4
    psi = router.predict(F)
    assert isinstance(psi, pd.Series) and psi.index.equals(F.index) and psi.name == "quality_gain"
    assert np.array_equal(psi.to_numpy(), router.quality_gain(F.to_numpy()))  # arrays in → arrays out
    shuffled = F[F.columns[::-1]]  # columns matched by name, not position
    assert np.array_equal(router.predict(shuffled).to_numpy(), psi.to_numpy())
    with pytest.raises(ValueError, match=r"feature columns \['x3'\] of the training data are missing"):
        router.predict(F.drop(columns="x3"))
    routed = router.route(F, [0.0, 0.5])
    assert isinstance(routed, pd.DataFrame) and routed.index.equals(F.index) and list(routed.columns) == [0.0, 0.5]
    assert np.array_equal(routed[0.5].to_numpy(), router.route(F.to_numpy(), 0.5))
    assert router.route(F, 0.5).name == "to_primary"
    with pytest.raises(ValueError, match="columns differ"):
        MetaRouter().fit(F, np.zeros(len(F)), F.rename(columns={"x0": "z"}), np.zeros(len(F)))


def test_summary_reports_the_fit(fitted):
    router, F = fitted
    s = router.summary()
    assert list(s.columns) == ["value"]
    assert s.loc["gold rows", "value"] == 60 and s.loc["preference rows", "value"] == 180
    assert s.loc["bias learner", "value"] == "RLearner" and s.loc["non-finite values", "value"] == 0
    assert s.loc["scale constant", "value"] == pytest.approx(float(router.info_.scale_constant))
    with pytest.raises(RuntimeError, match="call fit"):
        MetaRouter().summary()


@pytest.mark.slow  # end to end: fit, bootstrap (and save, load), intervals
def test_interval_methods_share_one_kept_bootstrap(fitted, monkeypatch):
    router, F = fitted
    router._replicates = None
    calls = []
    real = api._replicates_jit
    monkeypatch.setattr(api, "_replicates_jit", lambda *a, **k: calls.append(1) or real(*a, **k))
    lo, hi = router.quality_interval(F, n_replicates=10)
    n_calls = len(calls)
    assert n_calls >= 1
    router.effect_interval(F.iloc[:7], n_replicates=10)
    router.value_interval(F, [0.0, 0.2], n_replicates=10)
    assert len(calls) == n_calls  # ψ̂, Δ̂ and values from the same replicates: nothing refitted
    router.quality_interval(F, n_replicates=10, seed=5)  # another bootstrap: fitted anew
    assert len(calls) > n_calls


@pytest.mark.slow
def test_kept_replicates_are_bootstrap_predicts_replicates(fitted):
    router, F = fitted
    router._replicates = None
    lo, hi = router.quality_interval(F, n_replicates=10)
    # The kept replicates are bootstrap_predict's replicates (same key, weights and rule), to float32
    # rounding of a fused versus a separate prediction.
    W = bootstrap_weights(api.jax.random.key(router.seed + 1), router.data_.is_gold, 10)
    predict = api.jax.jit(bootstrap_predict, static_argnames="config")  # op by op it costs more than compiling
    draws = predict(api.jax.random.key(router.seed), router.data_, jnp.asarray(F.to_numpy(), jnp.float32),
                    W, router.config, router.hyper)
    lo_ref, hi_ref = (np.quantile(np.asarray(draws), q, axis=0) for q in (0.025, 0.975))
    assert np.allclose(lo.to_numpy(), lo_ref, atol=1e-5) and np.allclose(hi.to_numpy(), hi_ref, atol=1e-5)


def test_progress_must_be_a_boolean():
    with pytest.raises(ValueError, match="progress must be True or False"):
        MetaRouter(progress="yes")


def test_a_cate_learner_value_keeps_its_own_learners_and_learner_sets_psi_alone(tmp_path):
    """``cate=TLearner(outcome=Ridge())`` fits Δ̂ with ridge arms whatever ``learner`` is: its Δ̂ equals the one of
    ``cate="t", learner="ridge"`` (ridge everywhere), while ψ̂ is the default kernel's, not ridge's."""
    from mrjax.cate import DRLearner, TLearner
    from mrjax.learners import GradientBoostedTrees

    F, label, gold = labelled_frame()
    X = F.to_numpy()
    value = MetaRouter(cate=TLearner(outcome=Ridge()), relevance=False, progress=False)
    named = MetaRouter(cate="t", learner="ridge", relevance=False, progress=False)
    assert value.config.method.cate.outcome == Ridge()
    assert value.config.quality_learner != Ridge() and named.config.quality_learner == Ridge()
    for r in (value, named):
        r.fit(X[gold], label[gold], X[~gold], label[~gold])
    np.testing.assert_allclose(value.effect(X), named.effect(X), rtol=0, atol=1e-6)
    assert np.abs(value.quality_gain(X) - named.quality_gain(X)).max() > 1e-3  # ψ̂ by another learner
    value.save(str(tmp_path / "r"))
    loaded = MetaRouter.load(str(tmp_path / "r"))
    assert loaded.config == value.config and np.array_equal(loaded.effect(X), value.effect(X))
    gbt = GradientBoostedTrees(n_trees=20, depth=2)
    assert MetaRouter(cate=DRLearner(outcome=gbt)).config.method.cate.outcome == gbt
    for wrong, match in (({"n_folds": 0}, "n_folds=0 would be ignored"),
                         ({"propensity": "gbt"}, "propensity='gbt' would be ignored")):
        with pytest.raises(ValueError, match=match):
            MetaRouter(cate=DRLearner(), **wrong)
