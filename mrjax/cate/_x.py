"""The X-learner (Künzel et al., 2019), built for very unequal arms.

Impute ``D_1 = r − μ̂_0(x)`` on gold rows and ``D_0 = μ̂_1(x) − y`` on preference rows, fit
``τ_1`` and ``τ_0``, and combine ``τ = p̂ τ_0 + (1 − p̂) τ_1``.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from mrjax.cate._base import (
    Stages, count_nonfinite, default_cate_hyper, model_hyper, propensity_stage, resolve_learners,
)
from mrjax.learners._base import Learner, used_hyper
from mrjax.learners._linear import Logistic, RandomFeatureRidge


@dataclasses.dataclass(frozen=True)
class XLearner:
    """X-learner of the preference bias.

    Attributes
    ----------
    propensity : classifier for the mixing weight ``p̂(x)``; ``None`` mixes with the known
        (constant) propensity.
    outcome : regressor for ``μ̂_1`` and ``μ̂_0`` (each fitted on one source only, so the imputed
        effects are out-of-sample without cross-fitting).
    effect : the two final regressions; ``None`` gives random-feature ridge with the largest
        penalty within one standard error of the best leave-one-out error (``docs/design.md``).
    """

    propensity: Learner | None = Logistic()
    outcome: Learner = RandomFeatureRidge()
    effect: Learner | None = None
    n_effect = 2

    hyper = default_cate_hyper  # CateHyper of this learner's components

    def __post_init__(self):
        resolve_learners(self, "loo_1se")

    def fit_stages(self, key, data, hyper, known_propensity, folds) -> Stages:
        # The propensity only mixes τ̂₀ and τ̂₁ (a full-data fit below): its diagnostics come
        # from that same fit in-sample, not from K extra cross-fitted fits.
        p, p_info = propensity_stage(self, key, data, hyper, known_propensity, None)
        X, t, o, w = data.features, data.is_gold, data.label, data.weight
        out, eff = self.outcome, self.effect
        h_out = lambda i: model_hyper(hyper.outcome, i)  # noqa: E731
        mu1_params = out.fit(key, X, o, w * t, h_out(0))
        mu0_params = out.fit(key, X, o, w * (1 - t), h_out(1))
        d1 = o - out.predict(mu0_params, X)
        d0 = out.predict(mu1_params, X) - o
        tau1 = eff.fit(key, X, d1, w * t, model_hyper(hyper.effect, 0))
        tau0 = eff.fit(key, X, d0, w * (1 - t), model_hyper(hyper.effect, 1))
        if self.propensity is None:
            g = jnp.mean(p)  # a known propensity enters as a constant mixing weight
        else:
            g = self.propensity.fit(key, X, t, w, hyper.propensity)
        outcome_used = (used_hyper(h_out(0), mu1_params), used_hyper(h_out(1), mu0_params))
        nonfinite = {"outcome": count_nonfinite(d1, w * t > 0) + count_nonfinite(d0, w * (1 - t) > 0)}
        return Stages((tau1, tau0, g), p_info, jnp.zeros((), jnp.int32), outcome_used, nonfinite)

    def predict(self, params, X):
        tau1, tau0, g = params
        if self.propensity is None:
            gx = jnp.broadcast_to(g, (X.shape[0],))
        else:
            gx = self.propensity.predict(g, X)
        return gx * self.effect.predict(tau0, X) + (1 - gx) * self.effect.predict(tau1, X)
