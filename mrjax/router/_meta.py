"""The Meta-Router (arXiv 2509.25535): debias the preference labels with a CATE learner's Δ̂."""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from mrjax.cate._base import fit_cate, predict_bias, with_learners
from mrjax.cate._r import RLearner
from mrjax.router._protocol import RouterHyper, Targets


@dataclasses.dataclass(frozen=True)
class Meta:
    """The Meta-Router: fit Δ̂ with ``cate``, target ``y + Δ̂(x)`` on preference rows (weight λ)
    and ``r`` on gold rows.

    Attributes
    ----------
    cate : a CATE learner value (``RLearner()``, ``DRLearner()``, ``XLearner()``, …).
    """

    cate: object = RLearner()
    name = "meta"
    uses_preference_weight = True
    estimates_bias = True

    def hyper(self):
        return self.cate.hyper()

    def targets(self, key, data, hyper: RouterHyper, gold_label, known_propensity) -> Targets:
        t, o, w = data.is_gold, data.label, data.weight
        cate_fit, cate_info = fit_cate(key, data, self.cate, hyper.cate, known_propensity)
        target = jnp.where(t > 0.5, o, o + predict_bias(self.cate, cate_fit, data.features))
        weight = w * jnp.where(t > 0.5, 1.0, hyper.preference_weight)
        return Targets(target, weight, cate_fit, cate_info, jnp.zeros((), o.dtype))

    def predict_bias(self, cate_fit, X):
        return predict_bias(self.cate, cate_fit, X)

    def with_cate(self, cate) -> "Meta":
        return dataclasses.replace(self, cate=cate)

    def with_learners(self, **learners) -> "Meta":
        return dataclasses.replace(self, cate=with_learners(self.cate, **learners))
