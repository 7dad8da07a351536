"""Weighted ridge (closed form, with a one-pass cross-fitting path) and logistic regression (Newton/IRLS)."""
from __future__ import annotations

import dataclasses
from typing import NamedTuple, Union

import jax
import jax.numpy as jnp

from mrjax._typing import Array, Hyper, PRNGKey
from mrjax.data._folds import Folds
from mrjax.learners._base import check_xyw
from mrjax.learners._features import FeatureParams, Identity, RandomFourier

FeatureMap = Union[Identity, RandomFourier]


class LinearParams(NamedTuple):
    """A fitted linear model on a feature map.

    Attributes
    ----------
    coef : (1 + D,) array; ``coef[0]`` is the intercept (never penalised).
    features : FeatureParams of the feature map.
    grad_norm : () array; norm of the objective's gradient at ``coef`` (0 for the
        closed form); a convergence diagnostic for the iterative fits.
    """

    coef: Array
    features: FeatureParams
    grad_norm: Array


def _design(fmap: FeatureMap, fparams: FeatureParams, X: Array) -> Array:
    Z = fmap.apply(fparams, X)
    return jnp.concatenate([jnp.ones((Z.shape[0], 1), Z.dtype), Z], axis=1)


def _penalty_diag(p: int, penalty: Array, dtype) -> Array:
    return jnp.concatenate([jnp.zeros((1,), dtype), jnp.full((p - 1,), 1.0, dtype) * penalty])


def _solve_psd(G: Array, b: Array, penalty: Array) -> Array:
    """Solve ``(G + penalty·P) β = b`` (P: identity except the intercept) by Cholesky.

    A jitter of 1e-6 of the mean diagonal keeps a rank-deficient unpenalised system
    solvable; it is far below the float32 resolution of any well-posed problem.
    """
    p = G.shape[0]
    A = G + jnp.diag(_penalty_diag(p, penalty, G.dtype))
    jitter = 1e-6 * jnp.trace(A) / p + 1e-12
    A = A + jitter * jnp.eye(p, dtype=G.dtype)
    c = jax.scipy.linalg.cho_factor(A, lower=True)
    return jax.scipy.linalg.cho_solve(c, b)


@dataclasses.dataclass(frozen=True)
class Ridge:
    """Weighted ridge regression in closed form.

    Minimises ``Σ_i w_i (y_i − β₀ − z(x_i)·β)² + penalty · |β|²`` (scikit-learn's
    ``Ridge`` convention: the penalty is not divided by the sample size), with ``z``
    the feature map (identity by default).

    Attributes
    ----------
    penalty : ridge penalty (hyper-parameter, sweepable).
    features : feature map, :class:`Identity` or :class:`RandomFourier`.
    """

    penalty: float = 1.0
    features: FeatureMap = Identity()
    task = "regression"

    def hyper(self) -> dict[str, Array]:
        return {"penalty": jnp.asarray(self.penalty, jnp.float32), **self.features.hyper()}

    def fit(self, key: PRNGKey, X: Array, y: Array, weight: Array, hyper: Hyper | None = None) -> LinearParams:
        check_xyw(X, y, weight)
        hyper = self.hyper() if hyper is None else hyper
        fparams = self.features.init(key, X.shape[1], hyper)
        Z = _design(self.features, fparams, X)
        G = Z.T @ (weight[:, None] * Z)
        b = Z.T @ (weight * y)
        coef = _solve_psd(G, b, hyper["penalty"])
        return LinearParams(coef, fparams, jnp.zeros((), Z.dtype))

    def predict(self, params: LinearParams, X: Array) -> Array:
        return _design(self.features, params.features, X) @ params.coef

    def crossfit_predict(
        self, key: PRNGKey, X: Array, y: Array, weight: Array, folds: Folds, hyper: Hyper | None = None
    ) -> Array:
        """Out-of-fold predictions from one pass over the data.

        Each fold's Gram matrix ``Z_kᵀ W_k Z_k`` is built once; the training Gram of
        fold k is the total minus fold k's own, so K fits cost one pass plus K small solves.
        """
        check_xyw(X, y, weight)
        hyper = self.hyper() if hyper is None else hyper
        fparams = self.features.init(key, X.shape[1], hyper)
        Z = _design(self.features, fparams, X)
        pad = lambda a: jnp.concatenate([a, jnp.zeros((1,) + a.shape[1:], a.dtype)])
        Zg, wg, yg = pad(Z)[folds.members], pad(weight)[folds.members], pad(y)[folds.members]
        Gk = jnp.einsum("kmp,kmq->kpq", Zg * wg[..., None], Zg)
        bk = jnp.einsum("kmp,km->kp", Zg, wg * yg)
        coefs = jax.vmap(_solve_psd, in_axes=(0, 0, None))(Gk.sum(0)[None] - Gk, bk.sum(0)[None] - bk, hyper["penalty"])
        return jnp.sum(Z * coefs[folds.fold_id], axis=1)


def RandomFeatureRidge(n_features: int = 256, bandwidth: float = 2.0, penalty: float = 1.0) -> Ridge:
    """Random Fourier feature (RBF kernel) ridge: :class:`Ridge` on :class:`RandomFourier` features."""
    return Ridge(penalty=penalty, features=RandomFourier(n_features, bandwidth))


@dataclasses.dataclass(frozen=True)
class Logistic:
    """Weighted logistic regression fitted by Newton's method (IRLS).

    Minimises ``−Σ_i w_i [y_i log p_i + (1 − y_i) log(1 − p_i)] + ½ penalty |β|²``.
    Starts at the intercept-only solution and caps each Newton step's largest
    coordinate at ``max_step`` so separable data cannot blow up; ``grad_norm`` in the
    returned params reports convergence.

    Attributes
    ----------
    penalty : L2 penalty (hyper-parameter); 0 gives the unpenalised MLE.
    features : feature map.
    n_iter : Newton iterations (static).
    max_step : cap on the largest coordinate of one Newton step.
    """

    penalty: float = 1.0
    features: FeatureMap = Identity()
    n_iter: int = 25
    max_step: float = 5.0
    task = "classification"

    def hyper(self) -> dict[str, Array]:
        return {"penalty": jnp.asarray(self.penalty, jnp.float32), **self.features.hyper()}

    def fit(self, key: PRNGKey, X: Array, y: Array, weight: Array, hyper: Hyper | None = None) -> LinearParams:
        check_xyw(X, y, weight)
        hyper = self.hyper() if hyper is None else hyper
        fparams = self.features.init(key, X.shape[1], hyper)
        Z = _design(self.features, fparams, X)
        p = Z.shape[1]
        pen = _penalty_diag(p, hyper["penalty"], Z.dtype)
        ybar = jnp.clip(jnp.sum(weight * y) / jnp.sum(weight), 1e-6, 1 - 1e-6)
        beta0 = jnp.zeros((p,), Z.dtype).at[0].set(jnp.log(ybar) - jnp.log1p(-ybar))

        def gradient(beta):
            mu = jax.nn.sigmoid(Z @ beta)
            return Z.T @ (weight * (mu - y)) + pen * beta, mu

        def step(beta, _):
            g, mu = gradient(beta)
            H = Z.T @ ((weight * mu * (1 - mu))[:, None] * Z) + jnp.diag(pen)
            H = H + (1e-8 * jnp.trace(H) / p + 1e-12) * jnp.eye(p, dtype=Z.dtype)
            delta = jnp.linalg.solve(H, g)
            scale = jnp.minimum(1.0, self.max_step / (jnp.max(jnp.abs(delta)) + 1e-12))
            return beta - scale * delta, None

        beta, _ = jax.lax.scan(step, beta0, None, length=self.n_iter)
        g, _ = gradient(beta)
        return LinearParams(beta, fparams, jnp.linalg.norm(g) / jnp.sum(weight))

    def predict(self, params: LinearParams, X: Array) -> Array:
        return jax.nn.sigmoid(_design(self.features, params.features, X) @ params.coef)
