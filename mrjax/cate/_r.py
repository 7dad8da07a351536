"""The R-learner (Nie & Wager, 2021): regress ``(o − m̂)/(t − p̂)`` on ``x`` with weights ``(t − p̂)²``."""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from mrjax.cate._base import (
    Stages, count_nonfinite, default_cate_hyper, effect_fit, model_hyper, propensity_stage, resolve_learners, trimmed,
)
from mrjax.learners._base import Learner
from mrjax.learners._linear import Logistic, RandomFeatureRidge
from mrjax.nuisance._nuisance import fit_outcome


def r_pseudo_outcome(o, m, t, p, weight, mask):
    """``((o − m̂)/(t − p̂), w·(t − p̂)²)`` with rows ``|t − p̂| ≤ mask`` given weight 0; and which were masked."""
    resid_t = t - p
    keep = jnp.abs(resid_t) > mask
    return (o - m) / resid_t, weight * resid_t**2 * keep, keep


@dataclasses.dataclass(frozen=True)
class RLearner:
    """R-learner of the preference bias.

    Attributes
    ----------
    propensity : classifier for ``P(gold | x)``; ``None`` uses a known propensity.
    outcome : regressor for the marginal mean ``m̂(x) = E[o | x]``.
    effect : the final weighted regression; ``None`` gives random-feature ridge with a fixed
        penalty of 1 (selection under the R-loss weights overfits; ``docs/design.md``).
    n_folds : cross-fitting folds of the nuisances; 0 fits them in-sample.
    """

    propensity: Learner | None = Logistic()
    outcome: Learner = RandomFeatureRidge()
    effect: Learner | None = None
    n_folds: int = 5
    n_effect = 1

    hyper = default_cate_hyper  # CateHyper of this learner's components

    def __post_init__(self):
        resolve_learners(self, 1.0)

    def fit_stages(self, key, data, hyper, known_propensity, folds) -> Stages:
        p, p_info = propensity_stage(self, key, data, hyper, known_propensity, folds)
        m, m_used = fit_outcome(key, data, self.outcome, folds, "all", model_hyper(hyper.outcome, 0))
        pseudo, weight, keep = r_pseudo_outcome(data.label, m, data.is_gold, p, data.weight, hyper.pseudo_mask)
        keep = keep & ~trimmed(p, hyper)
        weight = jnp.where(keep, weight, 0.0)
        n_masked = jnp.sum(~keep & (data.weight > 0))
        params = (effect_fit(self.effect, key, data.features, pseudo, weight, model_hyper(hyper.effect, 0)),)
        nonfinite = {"outcome": count_nonfinite(m), "pseudo_outcome": count_nonfinite(pseudo, weight > 0)}
        return Stages(params, p_info, n_masked, (m_used,), nonfinite)

    def predict(self, params, X):
        return self.effect.predict(params[0], X)
