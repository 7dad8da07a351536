"""The baselines the Meta-Router is measured against (same learner, same scaling).

``Golden`` (gold rows only), ``Preference`` (raw preference rows only), ``Pooled`` (gold ∪ raw
preference, the usual practice), ``MeanShift`` (preference labels shifted by the mean gold −
preference gap), ``AllGolden`` (gold labels on every training row: an infeasible oracle).
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from mrjax.router._protocol import RouterHyper, Targets, no_cate_info


class _Baseline:
    estimates_bias = False

    def hyper(self):
        return ()

    def with_learners(self, **learners):
        return self

    def _out(self, target, weight, dtype, shift=None):
        return Targets(target, weight, (), no_cate_info(), jnp.zeros((), dtype) if shift is None else shift)


class _OwnRows:
    """A baseline that must not see the other source's labels: the feature relevance learns from its own
    targets and rows (``RouterConfig.relevance``), not from every labelled row."""

    def relevance_labels(self, data, gold_label):
        out = self.targets(None, data, None, gold_label, None)
        return out.target, out.weight


@dataclasses.dataclass(frozen=True)
class Golden(_OwnRows, _Baseline):
    """ψ̂ from the gold rows alone."""

    name = "golden"
    uses_preference_weight = False

    def targets(self, key, data, hyper: RouterHyper, gold_label, known_propensity) -> Targets:
        return self._out(data.label, data.weight * data.is_gold, data.label.dtype)


@dataclasses.dataclass(frozen=True)
class Preference(_OwnRows, _Baseline):
    """ψ̂ from the raw (scaled) preference rows alone."""

    name = "preference"
    uses_preference_weight = False

    def targets(self, key, data, hyper: RouterHyper, gold_label, known_propensity) -> Targets:
        return self._out(data.label, data.weight * (1 - data.is_gold), data.label.dtype)


@dataclasses.dataclass(frozen=True)
class Pooled(_Baseline):
    """ψ̂ from gold rows and raw preference rows (weight λ): the usual practice."""

    name = "pooled"
    uses_preference_weight = True

    def targets(self, key, data, hyper: RouterHyper, gold_label, known_propensity) -> Targets:
        t, w = data.is_gold, data.weight
        return self._out(data.label, w * jnp.where(t > 0.5, 1.0, hyper.preference_weight), data.label.dtype)


@dataclasses.dataclass(frozen=True)
class MeanShift(_Baseline):
    """Preference labels shifted by the weighted mean gold − preference gap (weight λ)."""

    name = "mean_shift"
    uses_preference_weight = True

    def targets(self, key, data, hyper: RouterHyper, gold_label, known_propensity) -> Targets:
        t, o, w = data.is_gold, data.label, data.weight
        shift = jnp.sum(w * t * o) / jnp.sum(w * t) - jnp.sum(w * (1 - t) * o) / jnp.sum(w * (1 - t))
        target = jnp.where(t > 0.5, o, o + shift)
        return self._out(target, w * jnp.where(t > 0.5, 1.0, hyper.preference_weight), o.dtype, shift)


@dataclasses.dataclass(frozen=True)
class AllGolden(_OwnRows, _Baseline):
    """Gold labels on every training row (``gold_label``): an infeasible oracle."""

    name = "all_golden"
    uses_preference_weight = False

    def targets(self, key, data, hyper: RouterHyper, gold_label, known_propensity) -> Targets:
        if gold_label is None:
            raise ValueError("method 'all_golden' needs gold_label: a gold label for every training row")
        if gold_label.shape != data.label.shape:
            raise ValueError(f"gold_label: expected shape {data.label.shape}, got {gold_label.shape}")
        return self._out(gold_label, data.weight, data.label.dtype)
