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
from mrjax.learners._base import check_xyw, positive_first, weighted_mean, window
from mrjax.learners._features import FeatureParams, RandomFourier, fast_cos
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


def _centred(theta, X, y, w, omega, phase):
    """The search basis at ``theta`` centred by the weighted means, the centred labels, ``Gc = Zcᵀ W Zc``, the
    penalised ``A = Gc + λ I`` and ``Σw`` (length-scales ``exp(theta["log_ell"])``, relative penalty
    ``exp(theta["log_g"])``; the intercept profiled out)."""
    D = omega.shape[1]
    # fast_cos: the trigonometric functions were half of each Adam step (XLA's cos and sin on CPU).
    Z = jnp.sqrt(2.0 / D) * fast_cos(jnp.matmul(X, omega * jnp.exp(-theta["log_ell"])[:, None], precision="highest") + phase[None, :])
    sw = jnp.sum(w)
    zbar, ybar = jnp.matmul(w, Z, precision="highest") / sw, jnp.sum(w * y) / sw
    Zc, yc = Z - zbar[None, :], y - ybar
    Gc = jnp.matmul(Zc.T, w[:, None] * Zc, precision="highest")
    lam = jnp.exp(theta["log_g"]) * jnp.trace(Gc) / D
    # A relative floor of 1e-5 (condition number ≤ 1e5): float32 Cholesky stays finite as Adam drives a
    # nearly noiseless target towards interpolation.
    A = Gc + (lam + 1e-5 * jnp.trace(Gc) / D + 1e-12) * jnp.eye(D, dtype=Z.dtype)
    return Zc, yc, Gc, A, sw


def _loo_rows(theta, X, y, w, omega, phase):
    """Each row's share of the weighted exact leave-one-out error (Sherman–Morrison) of the ridge on the
    basis at ``theta`` (:func:`_centred`): ``w_i r_i² / Σw`` for its leave-one-out residual ``r_i``."""
    Zc, yc, _, A, sw = _centred(theta, X, y, w, omega, phase)
    D = A.shape[0]
    # One triangular solve serves the coefficients and the leverages: with A = L Lᵀ and V = L⁻¹ Zcᵀ,
    # ŷ = Vᵀ V (w ∘ yc) and h_i = w_i ‖V_:i‖² (half the work of solving with A for every row).
    # L⁻¹ by one D × D triangular solve, then a product: faster on CPU than a triangular solve with n right-hand
    # sides, and accurate here (the floor bounds the condition number of L by ~300).
    L_inv = jax.scipy.linalg.solve_triangular(jnp.linalg.cholesky(A), jnp.eye(D, dtype=A.dtype), lower=True)
    V = jnp.matmul(L_inv, Zc.T, precision="highest")
    resid = yc - jnp.matmul(jnp.matmul(V, w * yc, precision="highest"), V, precision="highest")
    h = w / sw + w * jnp.sum(V * V, axis=0)
    return w * (resid / (1.0 - jnp.minimum(h, 0.99))) ** 2 / sw


def _loo(theta, X, y, w, omega, phase):
    """The weighted exact leave-one-out error (:func:`_loo_rows` summed)."""
    return jnp.sum(_loo_rows(theta, X, y, w, omega, phase))


def _gcv(theta, X, y, w, omega, phase):
    """Weighted generalised cross-validation of the ridge on the basis at ``theta`` (:func:`_centred`):
    ``(Σ w r² / Σw) / (1 − df / n_eff)²`` with ``df = 1 + tr(A⁻¹ Gc)`` and Kish's ``n_eff = (Σw)² / Σw²``,
    as ``learners._linear``'s GCV. It is :func:`_loo` with every row given the average leverage, so it needs
    no leverage per row (the ``n × D²`` product for them is gone). ``df / n_eff`` is capped at 0.99, as
    :func:`_loo` caps each leverage."""
    Zc, yc, Gc, A, sw = _centred(theta, X, y, w, omega, phase)
    cf = jax.scipy.linalg.cho_factor(A, lower=True)
    beta = jax.scipy.linalg.cho_solve(cf, jnp.matmul(Zc.T, w * yc, precision="highest"))
    resid = yc - jnp.matmul(Zc, beta, precision="highest")
    df = 1.0 + jnp.trace(jax.scipy.linalg.cho_solve(cf, Gc))
    return jnp.sum(w * resid**2) / sw / (1.0 - jnp.minimum(df * jnp.sum(w**2) / sw**2, 0.99)) ** 2


def _start(X, y, w, omega, phase, hyper):
    """The isotropic ``bandwidth · sqrt(d)`` length-scales, and the relative penalty that generalised
    cross-validation chooses on that basis (one eigendecomposition)."""
    d, m = X.shape[1], omega.shape[1]
    ell0 = hyper["bandwidth"] * jnp.sqrt(float(d))
    Z0 = _design(RandomFourier(m), FeatureParams(omega / ell0, phase), X)
    G0, b0, yy0, w20 = _moments(Z0, y, w)
    grid = jnp.asarray(GCV_GRID, X.dtype)
    score, ok = _gcv_score(_spectrum(G0, b0, yy0, grid), w20)
    return {"log_ell": jnp.full((d,), jnp.log(ell0), X.dtype), "log_g": jnp.log(grid[_best(score, ok)])}


def _search(X, y, w, omega, phase, theta, learning_rate, n_steps, key=None, batch_rows=None, criterion=_loo):
    """Adam on ``criterion`` (:func:`_loo` or :func:`_gcv`) over ``(log ℓ, log relative penalty)`` from
    ``theta`` (:func:`_start`). With ``batch_rows`` below the number of rows, step ``t`` scores window ``t`` of
    ``batch_rows`` rows of one random order of the positive-weight rows (``learners._base.window``: every such
    row once before any twice; weights kept); otherwise every step scores all rows. Returns the final
    ``{"log_ell", "log_g"}``."""
    n = X.shape[0]
    opt = optax.adam(learning_rate)
    grad = jax.grad(criterion)
    batched = batch_rows is not None and batch_rows < n
    if batched:
        order, count = positive_first(key, w)

    def step(carry, t):
        th, state = carry
        if batched:
            rows, mask = window(order, count, t, batch_rows)
            g = grad(th, X[rows], y[rows], w[rows] * mask, omega, phase)
        else:
            g = grad(th, X, y, w, omega, phase)
        updates, state = opt.update(g, state, th)
        return (optax.apply_updates(th, updates), state), None

    (theta, _), _ = jax.lax.scan(step, (theta, opt.init(theta)), jnp.arange(n_steps))
    return theta


def _improvement_z(before, after, w):
    """How many standard errors the per-row leave-one-out errors fell from ``before`` to ``after``
    (paired over the rows of positive weight)."""
    pos = (w > 0).astype(before.dtype)
    k = jnp.maximum(jnp.sum(pos), 2.0)
    d = (before - after) * pos
    mean = jnp.sum(d) / k
    var = jnp.sum(pos * (d - mean) ** 2) / (k - 1)
    return mean / jnp.sqrt(var / k + 1e-30)


@dataclasses.dataclass(frozen=True)
class FeatureRelevance:
    """A length-scale per feature, learned once per router fit and shared by the models of the fit
    (outcome, propensity, bias and quality models see features divided by it; ``RouterConfig.relevance``).
    With ``quality`` a Meta-Router's ψ̂ learns its own, by the same search on its debiased targets: they
    depend on ψ's features alone, the observed labels also on the bias's.

    The criterion is the weighted generalised cross-validation error of a random-feature ridge with an ARD
    kernel, descended by Adam from the isotropic kernel: :class:`RelevanceRidge`'s leave-one-out error with
    every row given the average leverage, as accurate here with less work per step (its labels are
    observed labels or ψ̂'s targets, not the heavy-tailed pseudo-outcomes per-row leverages guard against).
    It runs on the labels the router method may use (a Meta-Router's: gold and preference on the gold scale,
    whose relevant features are those of ψ and of the bias together), ``batch_rows`` rows per step, in turn
    from one random order of the rows, so its cost does not grow with the data.

    Held out: the search sees a random half of the rows (by the fit's key), and its length-scales are kept
    only when, on ``batch_rows`` rows of the other half, their leave-one-out error beats the isotropic
    kernel's by more than ``min_z`` standard errors (paired over rows); otherwise every feature keeps the
    isotropic length-scale. Length-scales tuned on a weak signal (few rows, or labels barely predictable
    from the features) fit its noise, and only fresh rows show it.

    Feature ``j`` is then divided by ``ℓ_j / (bandwidth · sqrt(d))``: the isotropic kernel leaves the
    features as they were, and a random-feature kernel of the same ``bandwidth`` (the default learner's,
    2.0) becomes the learned ARD kernel. A feature that no label depends on shrinks towards a constant for
    every learner; trees are unaffected (their splits do not depend on a feature's scale).

    Attributes
    ----------
    search_features : random Fourier features of the search's kernel (static).
    n_steps : Adam steps (static).
    batch_rows : rows scored per step and by the held-out check (static); all rows when there are fewer.
    held_out : search on half the rows and check on the other half (static); ``False`` searches on all
        rows and keeps what it finds.
    bandwidth : the isotropic length-scale in units of ``sqrt(d)``: the search's start and the scale that
        leaves features unchanged (hyper-parameter).
    learning_rate : Adam's step on the log length-scales (hyper-parameter).
    min_z : standard errors by which the learned length-scales must beat the isotropic ones on the held-out
        rows (hyper-parameter).
    quality : a Meta-Router's ψ̂ learns its own length-scales from its targets (static; ``False``: ψ̂ uses
        the shared ones).
    """

    search_features: int = 64
    n_steps: int = 40
    batch_rows: int = 512
    held_out: bool = True
    bandwidth: float = hyper_field(2.0)
    learning_rate: float = hyper_field(0.15)
    min_z: float = hyper_field(2.0)
    quality: bool = True

    def __post_init__(self):
        for name in ("search_features", "n_steps", "batch_rows"):
            integer(name, getattr(self, name), 1)
        for name in ("held_out", "quality"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("bandwidth", "learning_rate"):  # None in a structure (learners.structure)
            if getattr(self, name) is not None:
                finite(name, getattr(self, name), 0.0, strict=True)
        if self.min_z is not None:
            finite("min_z", self.min_z)

    def hyper(self) -> dict[str, Array]:
        return {name: jnp.asarray(getattr(self, name), jnp.float32) for name in ("bandwidth", "learning_rate", "min_z")}

    def fit(self, key: PRNGKey, X: Array, y: Array, weight: Array, hyper: Hyper | None = None) -> dict[str, Array]:
        """``{"lengthscale": ℓ (d,), "held_out_z": z}`` (``z``: the held-out improvement over the isotropic
        kernel in standard errors; ``nan`` without ``held_out``). A ``hyper`` holding ``"lengthscale"``
        returns it unchanged (a refit with the tuning held fixed)."""
        check_xyw(X, y, weight)
        hyper = self.hyper() if hyper is None else hyper
        if "lengthscale" in hyper:
            return {"lengthscale": hyper["lengthscale"], "held_out_z": hyper.get("held_out_z", jnp.full((), jnp.nan, X.dtype))}
        k_basis, k_rows, k_half, k_check = jax.random.split(key, 4)
        d = X.shape[1]
        # The kernel is translation-invariant, its random basis only in distribution: an offset far above
        # the spread swings every feature's phase as its length-scale moves, so the search runs centred.
        X, y = X - weighted_mean(X, weight)[None, :], y - weighted_mean(y, weight)
        base = RandomFourier(self.search_features).init(k_basis, d, {"bandwidth": jnp.ones((), X.dtype) / jnp.sqrt(float(d))})
        omega, phase = base.frequencies, base.phase
        start = _start(X, y, weight, omega, phase, hyper)
        if not self.held_out:
            theta = _search(X, y, weight, omega, phase, start, hyper["learning_rate"], self.n_steps, k_rows, self.batch_rows, _gcv)
            return {"lengthscale": jnp.exp(theta["log_ell"]), "held_out_z": jnp.full((), jnp.nan, X.dtype)}
        check = jax.random.bernoulli(k_half, 0.5, weight.shape)
        w_search, w_check = jnp.where(check, 0.0, weight), jnp.where(check, weight, 0.0)
        theta = _search(X, y, w_search, omega, phase, start, hyper["learning_rate"], self.n_steps, k_rows, self.batch_rows, _gcv)
        rows, mask = window(*positive_first(k_check, w_check), 0, min(self.batch_rows, X.shape[0]))
        Xc, yc, wc = X[rows], y[rows], w_check[rows] * mask
        z = _improvement_z(_loo_rows(start, Xc, yc, wc, omega, phase), _loo_rows(theta, Xc, yc, wc, omega, phase), wc)
        # Rejected: exactly the isotropic ℓ, so that ``scale`` is exactly 1 and the features stay as they were.
        isotropic = jnp.full((d,), hyper["bandwidth"] * jnp.sqrt(float(d)), X.dtype)
        return {"lengthscale": jnp.where(z > hyper["min_z"], jnp.exp(theta["log_ell"]), isotropic), "held_out_z": z}

    def scale(self, lengthscale: Array, bandwidth: Array) -> Array:
        """The factor each standardised feature is divided by: ``ℓ / (bandwidth · sqrt(d))``."""
        return lengthscale / (bandwidth * jnp.sqrt(float(lengthscale.shape[0])))


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
        # Centred features and labels (``weighted_mean``): the basis is translation-invariant only in
        # distribution, and an offset far above the spread swings every feature's phase as its length-scale
        # moves during the search. The fitted phase takes the centre back, so ``predict`` reads raw features.
        x0, y0 = weighted_mean(X, weight), weighted_mean(y, weight)
        X, y = X - x0[None, :], y - y0
        if "lengthscale" in hyper:  # a refit with the tuning held fixed
            ell, penalty = jnp.broadcast_to(hyper["lengthscale"], (d,)), hyper["penalty"]
            grad_norm = criterion = jnp.zeros((), X.dtype)
        else:
            ell, grad_norm, criterion = self._search(X, y, weight, omega, phase, hyper)
        frequencies = omega / ell[:, None]
        Z = _design(RandomFourier(self.n_features), FeatureParams(frequencies, phase), X)
        G, b, yy, w2 = _moments(Z, y, weight)
        if "lengthscale" not in hyper:  # the penalty on the full basis: the same leave-one-out criterion, on the grid
            _, penalty = Ridge(penalty_grid=GCV_GRID, criterion="loo")._solve(G, b, yy, w2, None, Z, y, weight)
        # One solver for the fit and for a refit on its reported tuning, so the two agree to the bit.
        coef = _solve_psd(G, b, penalty).at[0].add(y0)
        fparams = FeatureParams(frequencies, phase - jnp.matmul(x0, frequencies, precision="highest"))
        return RelevanceParams(coef, fparams, grad_norm, jnp.asarray(penalty, X.dtype), ell, criterion)

    def _search(self, X, y, w, omega, phase, hyper):
        m = min(self.search_features, self.n_features)
        omega, phase = omega[:, :m], phase[:m]
        theta = _search(X, y, w, omega, phase, _start(X, y, w, omega, phase, hyper), hyper["learning_rate"], self.n_steps)
        value, g = jax.value_and_grad(_loo)(theta, X, y, w, omega, phase)
        grad_norm = jnp.sqrt(sum(jnp.sum(v**2) for v in jax.tree_util.tree_leaves(g)))
        return jnp.exp(theta["log_ell"]), grad_norm, value

    def predict(self, params: RelevanceParams, X: Array) -> Array:
        return jnp.matmul(_design(RandomFourier(self.n_features), params.features, X), params.coef, precision="highest")
