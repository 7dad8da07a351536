"""Extension without editing mrjax: a CATE learner written here plugs into fit_router, the bootstrap
and a study; values that differ only in numbers share one compiled program."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mrjax.cate import Stages
from mrjax.data import paper_like
from mrjax.inference import bootstrap_predict
from mrjax.learners import Ridge
from mrjax.nuisance import PropensityInfo
from mrjax.router import MeanShift, Meta, RouterConfig, fit_router, predict_quality, predict_router_bias
from mrjax.sim import StudyConfig, run_study


@dataclasses.dataclass(frozen=True)
class ConstantBias:
    """Δ̂ = weighted mean gold label − weighted mean preference label: a global shift as a CATE learner."""

    outcome: object = Ridge()  # unused; present so studies and the facade can hand it learners
    n_effect = 0

    def hyper(self):
        from mrjax.cate import CateHyper

        return CateHyper(jnp.asarray([0.0, 1.0]), jnp.asarray(jnp.inf), jnp.asarray(0.0), {}, {}, {})

    def fit_stages(self, key, data, hyper, known_propensity, folds):
        t, o, w = data.is_gold, data.label, data.weight
        shift = jnp.sum(w * t * o) / jnp.sum(w * t) - jnp.sum(w * (1 - t) * o) / jnp.sum(w * (1 - t))
        z = jnp.zeros((), jnp.int32)
        return Stages((shift,), PropensityInfo(z, jnp.zeros(()), jnp.zeros(()), z, jnp.zeros(())), z, ())

    def predict(self, params, X):
        return jnp.broadcast_to(params[0], (X.shape[0],))


@pytest.mark.slow
def test_a_cate_learner_defined_outside_plugs_into_fit_bootstrap_and_study():
    sim = paper_like(jax.random.key(0), n_gold=50, n_preference=400, n_test=30, n_features=8)
    mine = RouterConfig(method=Meta(ConstantBias()), quality_learner=Ridge())
    shift = RouterConfig(method=MeanShift(), quality_learner=Ridge())
    fit, info = fit_router(jax.random.key(1), sim.data, mine)
    ref, ref_info = fit_router(jax.random.key(1), sim.data, shift)
    # A constant Δ̂ debiasing is the mean-shift baseline: the same targets, weights and fit.
    np.testing.assert_array_equal(predict_quality(mine, fit, sim.test_features),
                                  predict_quality(shift, ref, sim.test_features))
    np.testing.assert_allclose(predict_router_bias(mine, fit, sim.test_features), float(ref_info.mean_shift), rtol=1e-6)
    W = jnp.ones((3, sim.data.label.shape[0])).at[1:].set(jax.random.poisson(jax.random.key(2), 1.0, (2, 450)))
    boot = jax.jit(bootstrap_predict, static_argnames="config")  # op by op, it costs more than compiling it
    draws = boot(jax.random.key(1), sim.data, sim.test_features, W, mine)
    ref_draws = boot(jax.random.key(1), sim.data, sim.test_features, W, shift)
    np.testing.assert_array_equal(draws, ref_draws)
    # Without the feature relevance: with it a Meta-Router's ψ̂ learns its own length-scales from its targets and
    # mean-shift keeps those of the observed labels, so the two agree only when both searches are rejected.
    cfg = StudyConfig(n_runs=2, n_test=40, n_gold=30, n_preference=200, n_features_rff=16, batch_size=2,
                      methods=(("meta_constant", Meta(ConstantBias())), "mean_shift"), relevance=False)
    result = run_study(jax.random.key(3), cfg, progress=False)
    assert result.methods == ("meta_constant", "mean_shift")
    np.testing.assert_array_equal(result.efficiency[:, 0], result.efficiency[:, 1])


def test_new_penalties_lambdas_and_clip_levels_do_not_recompile():
    from mrjax import MetaRouter
    from mrjax.api import _fit_jit

    sim = paper_like(jax.random.key(4), n_gold=40, n_preference=200, n_test=5, n_features=6)
    X, t, o = (np.asarray(a) for a in (sim.data.features, sim.data.is_gold, sim.data.label))
    g = t == 1
    # Relevance off (its own numbers are checked not to recompile in test_relevance): half the compile.
    first = MetaRouter(learner=Ridge(penalty=1.0), relevance=False, seed=0).fit(X[g], o[g], X[~g], o[~g])
    compiled = _fit_jit._cache_size()
    outputs = [first.quality_gain(X[:5])]
    for params in (dict(learner=Ridge(penalty=5.0)), dict(learner=Ridge(penalty=1.0), preference_weight=0.3),
                   dict(learner=Ridge(penalty=1.0), propensity_clip=(0.05, 0.95), bias_clip=0.5)):
        mr = MetaRouter(seed=0, relevance=False, **params).fit(X[g], o[g], X[~g], o[~g])
        outputs.append(mr.quality_gain(X[:5]))
    assert _fit_jit._cache_size() == compiled  # one program for every penalty, λ and clip level
    # The numbers did reach the program: every variant fits differently.
    assert all(np.abs(outputs[0] - out).max() > 1e-4 for out in outputs[1:])
