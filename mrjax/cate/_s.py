"""The S-learner: one outcome model of ``o`` on ``(x, t)``, differenced at ``t = 1`` and ``t = 0``."""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from mrjax.cate._base import (
    Stages, count_nonfinite, default_cate_hyper, model_hyper, no_propensity, resolve_learners,
)
from mrjax.learners._base import Learner, used_hyper
from mrjax.learners._linear import RandomFeatureRidge


def with_treatment(X, t, scale):
    """``[X, (t − t̄)/sd(t)]``: the source as one more feature, on the standardised features' scale.

    ``scale = (t̄, sd(t))`` from the training rows' weights; a raw 0/1 column would sit at a sixth of a
    unit-variance feature's spread when 2.5% of rows are gold, and the model would barely use it.
    """
    return jnp.concatenate([X, ((t - scale[0]) / scale[1])[:, None]], axis=1)


@dataclasses.dataclass(frozen=True)
class SLearner:
    """S-learner of the preference bias.

    Attributes
    ----------
    outcome : regressor of ``o`` on the features and the (standardised) source indicator.
    """

    outcome: Learner = RandomFeatureRidge()
    n_effect = 0

    hyper = default_cate_hyper  # CateHyper of this learner's components

    def __post_init__(self):
        resolve_learners(self)

    def fit_stages(self, key, data, hyper, known_propensity, folds) -> Stages:
        h = model_hyper(hyper.outcome, 0)
        w, t = data.weight, data.is_gold
        share = jnp.sum(w * t) / jnp.sum(w)
        scale = jnp.stack([share, jnp.sqrt(jnp.maximum(share * (1 - share), 1e-12))])
        model = self.outcome.fit(key, with_treatment(data.features, t, scale), data.label, w, h)
        fitted = self.outcome.predict(model, with_treatment(data.features, t, scale))
        return Stages((model, scale), no_propensity(), jnp.zeros((), jnp.int32), (used_hyper(h, model),),
                      {"outcome": count_nonfinite(fitted, w > 0)})

    def predict(self, params, X):
        model, scale = params
        n = X.shape[0]
        ones, zeros = jnp.ones((n,), X.dtype), jnp.zeros((n,), X.dtype)
        return self.outcome.predict(model, with_treatment(X, ones, scale)) - self.outcome.predict(
            model, with_treatment(X, zeros, scale))
