"""What a router method is: a value with ``targets`` (the protocol ``fit_router`` runs)."""
from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import jax.numpy as jnp

from mrjax._typing import Array, PRNGKey
from mrjax.cate._base import CateInfo, no_propensity
from mrjax.data._dataset import Dataset


class RouterHyper(NamedTuple):
    """Sweepable numbers of a quality-gain fit.

    Attributes
    ----------
    preference_weight : () λ, the weight of the (debiased) preference rows in ψ̂'s fit.
    cate : the method's own numbers (a Meta-Router's ``CateHyper``; ``()`` for a baseline).
    quality : dict, hyper-parameters of the quality learner.
    relevance : dict, hyper-parameters of the feature relevance (``RouterConfig.relevance``); holding a
        ``lengthscale`` skips its search.
    quality_relevance : dict, ψ̂'s own learned relevance (``router.searches_quality``): holding a ``lengthscale``
        skips its search (otherwise it runs with ``relevance``'s settings).
    """

    preference_weight: Array
    cate: Any
    quality: dict
    relevance: dict = {}
    quality_relevance: dict = {}


class Targets(NamedTuple):
    """What a method hands the quality fit: a target and a weight per training row.

    Attributes
    ----------
    target, weight : (n,) arrays; rows of weight 0 are ignored.
    cate : the fitted bias model (a Meta-Router's ``CateFit``; ``()`` otherwise).
    cate_info : CateInfo (zeros for methods without a bias model).
    shift : () the shift added to preference labels (mean-shift; 0 otherwise).
    """

    target: Array
    weight: Array
    cate: Any
    cate_info: CateInfo
    shift: Array


class RouterMethod(Protocol):
    """A router method: ``name``, whether λ applies (``uses_preference_weight``), whether it
    estimates a bias (``estimates_bias``; then also ``predict_bias(cate_fit, X)`` and ``with_cate(cate)``), ``hyper()``
    for its own numbers, ``targets(...)`` for the quality fit, and ``with_learners(**learners)``
    to give it the learners of a facade or study. A new baseline is one such class and one
    line in ``router._presets``.

    Optionally ``relevance_labels(data, gold_label) -> (label, weight)``: the labels the feature
    relevance (``RouterConfig.relevance``) learns from. Without it, every row's observed label (gold,
    and preference on the gold scale): right for a method that uses both sources; a method that uses one
    source only must say so, or its features would be chosen with the other's labels."""

    name: str
    uses_preference_weight: bool
    estimates_bias: bool

    def hyper(self) -> Any: ...

    def targets(self, key: PRNGKey, data: Dataset, hyper: RouterHyper, gold_label: Array | None,
                known_propensity: Array | None) -> Targets: ...

    def with_learners(self, **learners) -> "RouterMethod": ...


def no_cate_info() -> CateInfo:
    z = jnp.zeros((), jnp.int32)
    return CateInfo(no_propensity(), z, z, nonfinite={k: z for k in STAGES})


STAGES = ("propensity", "outcome", "pseudo_outcome", "bias")  # the bias stages, in pipeline order
