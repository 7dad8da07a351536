"""A learner that picks among candidate learners by cross-validated loss, inside the compiled program."""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mrjax._typing import Array, Hyper, PRNGKey
from mrjax.data._folds import Folds, make_folds
from mrjax.learners._base import Learner, check_xyw, used_hyper
from mrjax.learners._crossfit import crossfit_predict
from mrjax.learners._linear import Logistic, RandomFeatureRidge, Ridge
from mrjax.learners._relevance import RelevanceRidge
from mrjax.learners._trees import GradientBoostedTrees, RandomForest


class AutoParams(NamedTuple):
    """A fitted choice.

    Attributes
    ----------
    members : every candidate's params, fitted on all rows (zeros for the unchosen ones when the
        choice was held fixed).
    choice : () int32, the index of the chosen candidate.
    cv_loss : (C,) each candidate's cross-validated loss (per unit of scoring weight).
    """

    members: tuple
    choice: Array
    cv_loss: Array

    def used(self, hyper: Hyper) -> Hyper:
        """The candidates' own tuning, the choice and the losses: a refit with it skips the selection."""
        return {"candidates": tuple(used_hyper(h, p) for h, p in zip(hyper["candidates"], self.members)),
                "choice": self.choice, "cv_loss": self.cv_loss}


def _loss(task: str, y: Array, pred: Array) -> Array:
    if task == "classification":
        p = jnp.clip(pred, 1e-6, 1 - 1e-6)
        return -(y * jnp.log(p) + (1 - y) * jnp.log1p(-p))
    return (y - pred) ** 2


@dataclasses.dataclass(frozen=True)
class Auto:
    """Picks one of ``candidates`` per fit by ``n_folds``-fold cross-validated loss on its own rows.

    Squared error for regression, log-loss for classification, weighted by the sample weights (or by
    ``score_weight`` where the caller scores on a subset: ψ̂ on held-out gold rows). Every candidate
    is fitted under one compiled program (no host round trip), so a choice can differ between bootstrap
    replicates, folds and runs of one vmapped batch; the choice and every candidate's loss are reported
    (``AutoParams``, and ``used_hyper``). Cross-fitted nuisances score the candidates on the cross-fitting
    folds themselves: each candidate's out-of-fold predictions are its validation predictions, so the
    choice costs no extra fits there.

    Attributes
    ----------
    candidates : learners of one task (static).
    n_folds : folds of the validation split in ``fit`` (static).
    """

    candidates: tuple[Learner, ...]
    n_folds: int = 5

    def __post_init__(self):
        if len(self.candidates) < 1:
            raise ValueError("Auto needs at least one candidate learner")
        tasks = {getattr(c, "task", None) for c in self.candidates}
        if len(tasks) != 1 or None in tasks:
            raise ValueError(f"Auto's candidates must share one task, got {sorted(map(str, tasks))}")

    @property
    def task(self) -> str:
        return self.candidates[0].task

    def hyper(self) -> dict[str, Any]:
        return {"candidates": tuple(c.hyper() for c in self.candidates)}

    def _scores(self, key, X, y, weight, folds, hyper, score_weight):
        keys = jax.random.split(key, len(self.candidates))
        preds, used = [], []
        for k, c, h in zip(keys, self.candidates, hyper["candidates"]):
            pred, _, u = crossfit_predict(c, k, X, y, weight, folds, h)
            preds.append(pred)
            used.append(u)
        losses = jnp.stack([jnp.sum(score_weight * _loss(self.task, y, p)) for p in preds]) / jnp.sum(score_weight)
        # A candidate whose loss is not finite is never chosen (unless none is finite: then the first).
        choice = jnp.argmin(jnp.where(jnp.isfinite(losses), losses, jnp.inf)).astype(jnp.int32)
        return preds, tuple(used), losses, choice

    def fit(self, key: PRNGKey, X: Array, y: Array, weight: Array, hyper: Hyper | None = None,
            score_weight: Array | None = None) -> AutoParams:
        """Fit every candidate on all rows and choose one by cross-validated loss on ``score_weight``
        (default: ``weight``); with ``hyper["choice"]`` given, fit only that candidate."""
        check_xyw(X, y, weight)
        hyper = self.hyper() if hyper is None else hyper
        k_fold, k_score, k_fit = jax.random.split(key, 3)
        fit_keys = jax.random.split(k_fit, len(self.candidates))
        fits = [lambda k=k, c=c, h=h: c.fit(k, X, y, weight, h)
                for k, c, h in zip(fit_keys, self.candidates, hyper["candidates"])]
        if "choice" in hyper:  # the tuning held fixed: one candidate refitted
            shapes = [jax.eval_shape(f) for f in fits]
            zeros = [jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), sh) for sh in shapes]
            branches = [lambda i=i: tuple(fits[j]() if j == i else zeros[j] for j in range(len(fits)))
                        for i in range(len(fits))]
            members = jax.lax.switch(hyper["choice"], branches)
            return AutoParams(members, jnp.asarray(hyper["choice"], jnp.int32), jnp.asarray(hyper["cv_loss"]))
        score_weight = weight if score_weight is None else score_weight * (weight > 0)
        folds = make_folds(k_fold, (score_weight > 0).astype(X.dtype), self.n_folds)
        _, _, losses, choice = self._scores(k_score, X, y, weight, folds, hyper, score_weight)
        return AutoParams(tuple(f() for f in fits), choice, losses)

    def predict(self, params: AutoParams, X: Array) -> Array:
        branches = [lambda m, c=c, i=i: c.predict(m[i], X) for i, c in enumerate(self.candidates)]
        return jax.lax.switch(params.choice, branches, params.members)

    def crossfit_predict(self, key: PRNGKey, X: Array, y: Array, weight: Array, folds: Folds,
                         hyper: Hyper | None = None) -> tuple[Array, Hyper]:
        """Out-of-fold predictions of the candidate with the smallest out-of-fold loss, and the used
        hyper-parameters (the choice and the losses included)."""
        check_xyw(X, y, weight)
        hyper = self.hyper() if hyper is None else hyper
        if "choice" in hyper:
            keys = jax.random.split(key, len(self.candidates))
            branches = [lambda i=i: crossfit_predict(self.candidates[i], keys[i], X, y, weight, folds,
                                                     hyper["candidates"][i])[0] for i in range(len(self.candidates))]
            return jax.lax.switch(hyper["choice"], branches), hyper
        preds, used, losses, choice = self._scores(key, X, y, weight, folds, hyper, weight)
        return jnp.stack(preds)[choice], {"candidates": used, "choice": choice, "cv_loss": losses}


def named(name: str, task: str = "regression") -> Learner:
    """The learner a name stands for (``REGRESSORS`` / ``CLASSIFIERS``), with its defaults; ``"auto"`` is
    ``Auto`` over the others' cheap-enough set (``AUTO_CANDIDATES``)."""
    table = {
        "regression": {"rff": RandomFeatureRidge, "relevance": RelevanceRidge, "gbt": GradientBoostedTrees,
                       "forest": RandomForest, "ridge": lambda: Ridge(penalty=1.0)},
        "classification": {"logistic": Logistic, "gbt": lambda: GradientBoostedTrees(task="classification"),
                           "forest": lambda: RandomForest(task="classification")},
    }[task]
    if name == "auto":
        return Auto(tuple(table[n]() for n in AUTO_CANDIDATES[task]))
    if name not in table:
        raise ValueError(f"unknown {task} learner {name!r}; expected one of {sorted(table) + ['auto']}")
    return table[name]()


REGRESSORS = ("rff", "relevance", "gbt", "forest", "ridge", "auto")
CLASSIFIERS = ("logistic", "gbt", "forest", "auto")
# What "auto" chooses among: the learners whose fits cost seconds, not minutes, at 4,000 rows (the forest's
# cross-validation alone costs ~20 s there; it stays available by name and as an explicit candidate).
AUTO_CANDIDATES = {"regression": ("rff", "relevance", "gbt"), "classification": ("logistic", "gbt")}
