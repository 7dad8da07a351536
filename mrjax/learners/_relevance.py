"""Random-feature ridge with a kernel that learns which features matter (ARD length-scales).

The RBF kernel ``exp(−Σ_j (x_j − x'_j)² / (2 ℓ_j²))`` gets one length-scale per feature. Its random
Fourier basis ``z(x) = sqrt(2/D) cos(Σ_j x_j ω_jk / ℓ_j + b_k)`` keeps fixed draws ``ω, b`` while ``ℓ``
moves, so the weighted exact leave-one-out error of the closed-form ridge on that basis is a smooth
function of ``(log ℓ, log λ)``; Adam (optax) descends it for a fixed number of steps, and the ridge is
then solved in closed form on the learned basis. A feature whose length-scale grows past the data's
spread drops out of the kernel; the relevant ones shrink.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from mrjax._checks import finite, integer
from mrjax._hyper import hyper_field
from mrjax._typing import Array, Hyper, PRNGKey
from mrjax.learners._base import check_xyw
from mrjax.learners._features import FeatureParams, RandomFourier
from mrjax.learners._linear import GCV_GRID, Ridge, _best, _design, _gcv_score, _moments, _solve_psd, _spectrum


class RelevanceParams(NamedTuple):
    """A fitted relevance ridge.

    Attributes
    ----------
    coef : (1 + D,) intercept and coefficients on the learned basis.
    features : FeatureParams with ``ω / ℓ`` as frequencies.
    grad_norm : () norm of the criterion's gradient at the last step (a convergence diagnostic).
    penalty : () the ridge penalty used (absolute, scikit-learn's convention).
    lengthscale : (d,) the learned length-scale of each feature (on the features' own scale).
    criterion : () the weighted leave-one-out error at the learned values.
    """

    coef: Array
    features: FeatureParams
    grad_norm: Array
    penalty: Array
    lengthscale: Array
    criterion: Array

    def used(self, hyper: Hyper) -> Hyper:
        """``hyper`` with the learned penalty and length-scales: a refit with it skips the search."""
        return {**hyper, "penalty": self.penalty, "lengthscale": self.lengthscale}


def _loo(theta, X, y, w, omega, phase):
    """Weighted exact leave-one-out error (Sherman–Morrison, intercept profiled) of the ridge on the
    basis with length-scales ``exp(theta["log_ell"])`` and relative penalty ``exp(theta["log_g"])``."""
    D = omega.shape[1]
    Z = jnp.sqrt(2.0 / D) * jnp.cos(jnp.matmul(X, omega * jnp.exp(-theta["log_ell"])[:, None], precision="highest") + phase[None, :])
    sw = jnp.sum(w)
    zbar, ybar = jnp.matmul(w, Z, precision="highest") / sw, jnp.sum(w * y) / sw
    Zc, yc = Z - zbar[None, :], y - ybar
    Gc = jnp.matmul(Zc.T, w[:, None] * Zc, precision="highest")
    lam = jnp.exp(theta["log_g"]) * jnp.trace(Gc) / D
    # A relative floor of 1e-5 (condition number ≤ 1e5): float32 Cholesky stays finite as Adam drives a
    # nearly noiseless target towards interpolation.
    A = Gc + (lam + 1e-5 * jnp.trace(Gc) / D + 1e-12) * jnp.eye(D, dtype=Z.dtype)
    chol = jax.scipy.linalg.cho_factor(A, lower=True)
    beta = jax.scipy.linalg.cho_solve(chol, jnp.matmul(Zc.T, w * yc, precision="highest"))
    resid = yc - jnp.matmul(Zc, beta, precision="highest")
    h = w / sw + w * jnp.sum(Zc * jax.scipy.linalg.cho_solve(chol, Zc.T).T, axis=1)
    return jnp.sum(w * (resid / (1.0 - jnp.minimum(h, 0.99))) ** 2) / sw


def _search(X, y, w, omega, phase, hyper, n_steps, key=None, batch_rows=None):
    """Adam on ``_loo`` over ``(log ℓ, log relative penalty)`` from the isotropic ``bandwidth · sqrt(d)`` and
    the GCV penalty on that basis. With ``batch_rows`` below the rows with positive weight, each step
    scores ``batch_rows`` rows drawn afresh (uniformly among those rows, without replacement; weights
    kept); otherwise every step scores all rows. Returns the final ``{"log_ell", "log_g"}``."""
    d, n = X.shape[1], X.shape[0]
    m = omega.shape[1]
    ell0 = hyper["bandwidth"] * jnp.sqrt(float(d))
    # The relative penalty starts at the GCV choice on the isotropic basis (one eigendecomposition).
    Z0 = _design(RandomFourier(m), FeatureParams(omega / ell0, phase), X)
    G0, b0, yy0, w20 = _moments(Z0, y, w)
    grid = jnp.asarray(GCV_GRID, X.dtype)
    score, ok = _gcv_score(_spectrum(G0, b0, yy0, grid), w20)
    theta = {"log_ell": jnp.full((d,), jnp.log(ell0), X.dtype), "log_g": jnp.log(grid[_best(score, ok)])}
    opt = optax.adam(hyper["learning_rate"])
    value_and_grad = jax.value_and_grad(_loo)
    batched = batch_rows is not None and batch_rows < n
    # Rows of zero weight are never drawn while enough rows have positive weight (a -inf Gumbel key).
    floor = jnp.where(w > 0, 0.0, -jnp.inf)

    def step(carry, k):
        th, state = carry
        if batched:
            _, rows = jax.lax.top_k(floor + jax.random.gumbel(k, (n,), X.dtype), batch_rows)
            _, g = value_and_grad(th, X[rows], y[rows], w[rows], omega, phase)
        else:
            _, g = value_and_grad(th, X, y, w, omega, phase)
        updates, state = opt.update(g, state, th)
        return (optax.apply_updates(th, updates), state), None

    steps = jax.random.split(key, n_steps) if batched else None
    (theta, _), _ = jax.lax.scan(step, (theta, opt.init(theta)), steps, length=n_steps)
    return theta


@dataclasses.dataclass(frozen=True)
class FeatureRelevance:
    """A length-scale per feature, learned once per router fit and shared by every model of the fit
    (outcome, propensity, bias and quality models see features divided by it; ``RouterConfig.relevance``).

    The criterion is :class:`RelevanceRidge`'s: the weighted exact leave-one-out error of a random-feature
    ridge with an ARD kernel, descended by Adam. It runs on the labels the router method may use (a
    Meta-Router's: gold and preference on the gold scale, whose relevant features are those of ψ and of
    the bias together), on ``batch_rows`` rows drawn afresh each step, so its cost does not grow with the
    data. Dividing feature ``j`` by
    ``ℓ_j / sqrt(d)`` makes the default random-feature kernel (``bandwidth = 1``) that ARD kernel, and
    shrinks a feature that no label depends on towards a constant for every learner; trees are unaffected
    (their splits do not depend on a feature's scale).

    Attributes
    ----------
    search_features : random Fourier features of the search's kernel (static).
    n_steps : Adam steps (static).
    batch_rows : rows scored per step (static); all rows when there are fewer.
    bandwidth : the starting length-scale in units of ``sqrt(d)`` (hyper-parameter).
    learning_rate : Adam's step on the log length-scales (hyper-parameter).
    """

    search_features: int = 64
    n_steps: int = 40
    batch_rows: int = 512
    bandwidth: float = hyper_field(2.0)
    learning_rate: float = hyper_field(0.15)

    def __post_init__(self):
        for name in ("search_features", "n_steps", "batch_rows"):
            integer(name, getattr(self, name), 1)
        for name in ("bandwidth", "learning_rate"):  # None in a structure (learners.structure)
            if getattr(self, name) is not None:
                finite(name, getattr(self, name), 0.0, strict=True)

    def hyper(self) -> dict[str, Array]:
        return {"bandwidth": jnp.asarray(self.bandwidth, jnp.float32),
                "learning_rate": jnp.asarray(self.learning_rate, jnp.float32)}

    def fit(self, key: PRNGKey, X: Array, y: Array, weight: Array, hyper: Hyper | None = None) -> dict[str, Array]:
        """``{"lengthscale": ℓ (d,)}``; a ``hyper`` holding ``"lengthscale"`` returns it unchanged (a refit
        with the tuning held fixed)."""
        check_xyw(X, y, weight)
        hyper = self.hyper() if hyper is None else hyper
        if "lengthscale" in hyper:
            return {"lengthscale": hyper["lengthscale"]}
        k_basis, k_rows = jax.random.split(key)
        base = RandomFourier(self.search_features).init(k_basis, X.shape[1], {"bandwidth": jnp.ones((), X.dtype) / jnp.sqrt(float(X.shape[1]))})
        theta = _search(X, y, weight, base.frequencies, base.phase, hyper, self.n_steps, k_rows, self.batch_rows)
        return {"lengthscale": jnp.exp(theta["log_ell"])}

    def scale(self, lengthscale: Array) -> Array:
        """The factor each standardised feature is divided by: ``ℓ / sqrt(d)``."""
        return lengthscale / jnp.sqrt(float(lengthscale.shape[0]))


@dataclasses.dataclass(frozen=True)
class RelevanceRidge:
    """Random-feature ridge whose RBF kernel learns a length-scale per feature (automatic relevance
    determination) by minimising the weighted exact leave-one-out error.

    Leave-one-out error rather than the marginal likelihood: it is the criterion the ridge family
    already selects penalties by, it needs no noise model (doubly robust pseudo-outcomes are
    heteroscedastic and heavy-tailed), and a sample weight enters it as a row's multiplicity.
    The length-scales start at the isotropic ``bandwidth · sqrt(d)`` and the relative penalty at
    the generalised cross-validation choice on that basis; both then move by ``n_steps`` Adam steps.

    Attributes
    ----------
    n_features : D random features (static).
    bandwidth : the starting length-scale in units of ``sqrt(d)`` (hyper-parameter).
    learning_rate : Adam's step on the log length-scales and log penalty (hyper-parameter).
    n_steps : Adam steps (static).
    search_features : the search runs on the first ``search_features`` of the D random features (static):
        each step costs ``O(n m²)``, and length-scales need far fewer features to rank than the final fit
        needs to be accurate. The final penalty is then chosen on all D by the same criterion on ``GCV_GRID``.
    """

    n_features: int = 256
    bandwidth: float = hyper_field(2.0)
    learning_rate: float = hyper_field(0.05)
    n_steps: int = 100
    search_features: int = 64
    task = "regression"

    def hyper(self) -> dict[str, Array]:
        return {"bandwidth": jnp.asarray(self.bandwidth, jnp.float32),
                "learning_rate": jnp.asarray(self.learning_rate, jnp.float32)}

    def fit(self, key: PRNGKey, X: Array, y: Array, weight: Array, hyper: Hyper | None = None) -> RelevanceParams:
        check_xyw(X, y, weight)
        hyper = self.hyper() if hyper is None else hyper
        d = X.shape[1]
        base = RandomFourier(self.n_features).init(key, d, {"bandwidth": jnp.ones((), X.dtype) / jnp.sqrt(float(d))})
        omega, phase = base.frequencies, base.phase  # ω ~ N(0, I): the frequencies at ℓ = 1
        if "lengthscale" in hyper:  # a refit with the tuning held fixed
            ell, penalty = jnp.broadcast_to(hyper["lengthscale"], (d,)), hyper["penalty"]
            grad_norm = criterion = jnp.zeros((), X.dtype)
        else:
            ell, grad_norm, criterion = self._search(X, y, weight, omega, phase, hyper)
        fparams = FeatureParams(omega / ell[:, None], phase)
        Z = _design(RandomFourier(self.n_features), fparams, X)
        G, b, yy, w2 = _moments(Z, y, weight)
        if "lengthscale" not in hyper:  # the penalty on the full basis: the same leave-one-out criterion, on the grid
            _, penalty = Ridge(penalty_grid=GCV_GRID, criterion="loo")._solve(G, b, yy, w2, None, Z, y, weight)
        # One solver for the fit and for a refit on its reported tuning, so the two agree to the bit.
        coef = _solve_psd(G, b, penalty)
        return RelevanceParams(coef, fparams, grad_norm, jnp.asarray(penalty, X.dtype), ell, criterion)

    def _search(self, X, y, w, omega, phase, hyper):
        m = min(self.search_features, self.n_features)
        omega, phase = omega[:, :m], phase[:m]
        theta = _search(X, y, w, omega, phase, hyper, self.n_steps)
        value, g = jax.value_and_grad(_loo)(theta, X, y, w, omega, phase)
        grad_norm = jnp.sqrt(sum(jnp.sum(v**2) for v in jax.tree_util.tree_leaves(g)))
        return jnp.exp(theta["log_ell"]), grad_norm, value

    def predict(self, params: RelevanceParams, X: Array) -> Array:
        return jnp.matmul(_design(RandomFourier(self.n_features), params.features, X), params.coef, precision="highest")
