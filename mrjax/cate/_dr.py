"""The DR-learner (Kennedy, 2023): regress ``φ = (t − p̂)/(p̂(1 − p̂))·(o − μ̂_t) + μ̂_1 − μ̂_0`` on ``x``."""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from mrjax.cate._base import (
    Stages, count_nonfinite, default_cate_hyper, effect_fit, model_hyper, propensity_stage, resolve_learners, trimmed,
)
from mrjax.learners._base import Learner
from mrjax.learners._linear import Logistic, RandomFeatureRidge
from mrjax.nuisance._nuisance import fit_outcome


def dr_pseudo_outcome(o, t, p, mu1, mu0, weight, mask):
    """``(φ, w·1[p̂(1 − p̂) > mask])``, the doubly robust pseudo-outcome and its weight; and which were kept."""
    mu_t = jnp.where(t > 0.5, mu1, mu0)
    phi = (t - p) / (p * (1 - p)) * (o - mu_t) + mu1 - mu0
    keep = p * (1 - p) > mask
    return phi, weight * keep, keep


@dataclasses.dataclass(frozen=True)
class DRLearner:
    """Doubly robust learner of the preference bias.

    Attributes
    ----------
    propensity : classifier for ``P(gold | x)``; ``None`` uses a known propensity.
    outcome : regressor for the arm means ``μ̂_1`` (gold rows) and ``μ̂_0`` (preference rows).
    effect : the final regression of φ; ``None`` gives random-feature ridge with the penalty
        selected by exact leave-one-out error (``docs/design.md``).
    n_folds : cross-fitting folds of the nuisances; 0 fits them in-sample.
    """

    propensity: Learner | None = Logistic()
    outcome: Learner = RandomFeatureRidge()
    effect: Learner | None = None
    n_folds: int = 5
    n_effect = 1

    hyper = default_cate_hyper  # CateHyper of this learner's components

    def __post_init__(self):
        resolve_learners(self, "loo")

    def fit_stages(self, key, data, hyper, known_propensity, folds) -> Stages:
        p, p_info = propensity_stage(self, key, data, hyper, known_propensity, folds)
        mu1, mu1_used = fit_outcome(key, data, self.outcome, folds, "gold", model_hyper(hyper.outcome, 0))
        mu0, mu0_used = fit_outcome(key, data, self.outcome, folds, "preference", model_hyper(hyper.outcome, 1))
        phi, weight, keep = dr_pseudo_outcome(data.label, data.is_gold, p, mu1, mu0, data.weight, hyper.pseudo_mask)
        keep = keep & ~trimmed(p, hyper)
        weight = jnp.where(keep, weight, 0.0)
        n_masked = jnp.sum(~keep & (data.weight > 0))
        params = (effect_fit(self.effect, key, data.features, phi, weight, model_hyper(hyper.effect, 0)),)
        nonfinite = {"outcome": count_nonfinite(mu1) + count_nonfinite(mu0),
                     "pseudo_outcome": count_nonfinite(phi, weight > 0)}
        return Stages(params, p_info, n_masked, (mu1_used, mu0_used), nonfinite)

    def predict(self, params, X):
        return self.effect.predict(params[0], X)
