"""The T-learner: ``Δ̂ = μ̂_1 − μ̂_0``, one outcome model per source."""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from mrjax.cate._base import (
    Stages, default_cate_hyper, model_hyper, no_propensity, resolve_learners,
)
from mrjax.learners._base import Learner, used_hyper
from mrjax.learners._linear import RandomFeatureRidge


@dataclasses.dataclass(frozen=True)
class TLearner:
    """T-learner of the preference bias.

    Attributes
    ----------
    outcome : regressor fitted once on the gold rows (``μ̂_1``) and once on the preference rows (``μ̂_0``).
    """

    outcome: Learner = RandomFeatureRidge()
    n_effect = 0

    hyper = default_cate_hyper  # CateHyper of this learner's components

    def __post_init__(self):
        resolve_learners(self)

    def fit_stages(self, key, data, hyper, known_propensity, folds) -> Stages:
        X, t, o, w = data.features, data.is_gold, data.label, data.weight
        h = lambda i: model_hyper(hyper.outcome, i)  # noqa: E731
        params = (self.outcome.fit(key, X, o, w * t, h(0)), self.outcome.fit(key, X, o, w * (1 - t), h(1)))
        used = tuple(used_hyper(h(i), q) for i, q in enumerate(params))
        return Stages(params, no_propensity(), jnp.zeros((), jnp.int32), used)

    def predict(self, params, X):
        return self.outcome.predict(params[0], X) - self.outcome.predict(params[1], X)
