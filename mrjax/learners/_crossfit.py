"""K-fold cross-fitting: predict each row with a model that never saw it."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from mrjax._typing import Array, Hyper, PRNGKey
from mrjax.data._folds import Folds
from mrjax.learners._base import Learner, used_hyper


def convergence(params) -> Array:
    """A scalar convergence diagnostic of fitted params (largest over any leading fold axis).

    Iterative linear fits report the gradient norm; MLPs the last training loss;
    closed forms 0.
    """
    if hasattr(params, "grad_norm"):
        return jnp.max(params.grad_norm)
    if hasattr(params, "loss_trace"):
        return jnp.max(params.loss_trace[..., -1])
    return jnp.zeros(())


def crossfit_predict(
    learner: Learner,
    key: PRNGKey,
    X: Array,
    y: Array,
    weight: Array,
    folds: Folds | None,
    hyper: Hyper | None = None,
) -> tuple[Array, Array]:
    """Out-of-fold predictions of ``learner`` for every row.

    Parameters
    ----------
    learner : Learner
    key : PRNGKey
    X : (n, d) array
    y : (n,) array
    weight : (n,) array
    folds : Folds or None
        ``None`` fits once on all rows and predicts in-sample (the authors' choice).
    hyper : dict of arrays, optional

    Returns
    -------
    prediction : (n,) array; row i comes from a fit with zero weight on row i's fold.
    convergence : () array, see :func:`convergence`.
    used : the hyper-parameters the fits used: from the ridge family's one-pass path with
        per-fold values (the selected penalties as a (K,) array), otherwise ``hyper``.

    Notes
    -----
    Folds are expressed as per-fold weight vectors ``weight * (fold_id != k)`` and the
    K fits are vmapped, so shapes stay fixed. Learners with a ``crossfit_predict``
    method (ridge family) use their one-pass path instead.
    """
    hyper = learner.hyper() if hyper is None else hyper
    if folds is None:
        params = learner.fit(key, X, y, weight, hyper)
        return learner.predict(params, X), convergence(params), used_hyper(hyper, params)
    if hasattr(learner, "crossfit_predict"):
        pred, used = learner.crossfit_predict(key, X, y, weight, folds, hyper)
        return pred, jnp.zeros((), X.dtype), used
    K = folds.n_folds
    train_weight = jnp.where(folds.held_out(), 0.0, weight[None, :])
    keys = jax.random.split(key, K)
    params = jax.vmap(lambda k, w: learner.fit(k, X, y, w, hyper))(keys, train_weight)
    preds = jax.vmap(lambda p: learner.predict(p, X))(params)
    return preds[folds.fold_id, jnp.arange(X.shape[0])], convergence(params), hyper
