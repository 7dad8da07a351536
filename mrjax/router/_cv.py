"""λ chosen by cross-validation on the gold rows: a wrapper around any method that uses λ."""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from mrjax.data._folds import make_folds
from mrjax.router._fit import RouterConfig, fit_router, predict_quality
from mrjax.router._meta import Meta
from mrjax.router._metrics import routing_area
from mrjax.router._protocol import RouterHyper

CV_GRID = (0.0, 0.1, 0.3, 1.0)  # the default candidate λ values
CV_CRITERIA = ("squared_error", "routing")


@dataclasses.dataclass(frozen=True)
class CrossValidatedWeight:
    """``method`` with λ chosen per fit from ``grid`` by K-fold cross-validated loss on the gold rows.

    Each fold's gold rows get weight 0 in the whole pipeline, every candidate is fitted on the
    rest and scored on them: ``criterion="squared_error"`` (ψ̂'s regression error) or
    ``"routing"`` (the held-out rows' efficiency-gain area, ``router.routing_area``). The fit can
    thus stop borrowing preference labels (λ = 0 is Golden-only with the same learner); the
    choice and the losses are in ``RouterInfo``. ``hyper.preference_weight`` is ignored.

    Attributes
    ----------
    method : a method that uses λ (``Meta(…)``, ``Pooled()``, ``MeanShift()``).
    grid : candidate λ values (at least two, finite, ≥ 0).
    folds : folds of the cross-validation (at least 2).
    criterion : ``"squared_error"`` or ``"routing"``.
    """

    method: Any = Meta()
    grid: tuple = CV_GRID
    folds: int = 5
    criterion: str = "squared_error"
    uses_preference_weight = True

    def __post_init__(self):
        grid = tuple(float(v) for v in self.grid)
        if len(grid) < 2 or any(not (v >= 0 and v < float("inf")) for v in grid):
            raise ValueError(f"grid needs at least 2 finite values >= 0, got {self.grid}")
        object.__setattr__(self, "grid", grid)
        if not self.method.uses_preference_weight:
            raise ValueError(f"method {self.method.name!r} has no preference weight to choose")
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 2:
            raise ValueError(f"folds must be an integer of at least 2, got {self.folds!r}")
        if self.criterion not in CV_CRITERIA:
            raise ValueError(f"criterion must be one of {CV_CRITERIA}, got {self.criterion!r}")

    @property
    def name(self) -> str:
        return self.method.name

    @property
    def estimates_bias(self) -> bool:
        return self.method.estimates_bias

    def hyper(self):
        return self.method.hyper()

    def predict_bias(self, cate_fit, X):
        return self.method.predict_bias(cate_fit, X)

    def with_cate(self, cate) -> "CrossValidatedWeight":
        return dataclasses.replace(self, method=self.method.with_cate(cate))

    def with_learners(self, **learners) -> "CrossValidatedWeight":
        return dataclasses.replace(self, method=self.method.with_learners(**learners))

    def select_weight(self, key, data, config: RouterConfig, hyper: RouterHyper, gold_label, known_propensity):
        """λ from the grid minimising the cross-validated loss, and the loss per candidate.

        Every λ is vmapped (the bias stage, which does not depend on λ, is computed once per
        fold); folds run one after another (``lax.map``) so memory holds |grid| pipelines.
        Ties go to the smaller λ.
        """
        base = dataclasses.replace(config, method=self.method)
        grid = jnp.asarray(self.grid, data.label.dtype)
        folds = make_folds(jax.random.fold_in(key, 7), data.is_gold, self.folds)
        gold = data.is_gold > 0.5
        held = folds.held_out() & gold[None, :]  # (K, n): each fold's gold rows

        def fold_loss(out):
            d = data._replace(weight=jnp.where(out, 0.0, data.weight))

            def one(lam):
                fit, _ = fit_router(key, d, base, hyper._replace(preference_weight=lam), gold_label, known_propensity)
                pred = predict_quality(base, fit, data.features)
                if self.criterion == "routing":
                    return -routing_area(pred, data.label, jnp.where(out, data.weight, 0.0))
                return jnp.sum(jnp.where(out, data.weight * (data.label - pred) ** 2, 0.0))

            return jax.vmap(one)(grid)

        loss = jnp.sum(jax.lax.map(fold_loss, held), axis=0) / jnp.sum(data.weight * gold)
        return grid[jnp.argmin(loss)], loss
