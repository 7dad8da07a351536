"""Weighted ridge (closed form, with a one-pass cross-fitting path) and logistic regression (Newton/IRLS)."""
from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple, Union

import jax
import jax.numpy as jnp

from mrjax._typing import Array, Hyper, PRNGKey
from mrjax.data._folds import Folds
from mrjax._hyper import hyper_field
from mrjax.learners._base import check_xyw, weighted_mean
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
    penalty : () array; the penalty used (the GCV choice when the penalty is selected).
    """

    coef: Array
    features: FeatureParams
    grad_norm: Array
    penalty: Array


def _design(fmap: FeatureMap, fparams: FeatureParams, X: Array) -> Array:
    Z = fmap.apply(fparams, X)
    return jnp.concatenate([jnp.ones((Z.shape[0], 1), Z.dtype), Z], axis=1)


def _centred_design(fmap: FeatureMap, fparams: FeatureParams, X: Array, w: Array) -> tuple[Array, Array]:
    """The design, with the features' weighted means (``weighted_mean``) taken out where the map is the
    identity (an exact reparametrisation: the intercept is unpenalised), and those means (zeros for a
    random Fourier basis, left as drawn: its cosines are bounded, its phases uniform)."""
    if not isinstance(fmap, Identity):
        Z = _design(fmap, fparams, X)
        return Z, jnp.zeros((Z.shape[1] - 1,), Z.dtype)
    x0 = weighted_mean(X, w)
    return _design(fmap, fparams, X - x0[None, :]), x0


def _penalty_diag(p: int, penalty: Array, dtype) -> Array:
    return jnp.concatenate([jnp.zeros((1,), dtype), jnp.full((p - 1,), 1.0, dtype) * penalty])


def _solve_psd(G: Array, b: Array, penalty: Array) -> Array:
    """Solve ``(G + penalty·P) β = b`` (P: identity except the intercept) by Cholesky.

    A jitter of 1e-6 of the mean diagonal keeps a rank-deficient unpenalised system
    solvable; it is far below the float32 resolution of any well-posed problem. Where the spectrum is
    concentrated (nearly collinear features) Cholesky's rounding error is about ``eps · λ_max ≤ eps · tr``,
    so the jitter is at least ``eps · tr(A)``: a smaller penalty is lost to rounding anyway.
    """
    p = G.shape[0]
    A = G + jnp.diag(_penalty_diag(p, penalty, G.dtype))
    eps = float(jnp.finfo(G.dtype).eps)
    A = A + (max(1e-6 / p, eps) * jnp.trace(A) + 1e-12) * jnp.eye(p, dtype=G.dtype)
    return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(A, lower=True), b)


def _moments(Z: Array, y: Array, w: Array) -> tuple[Array, Array, Array, Array]:
    """``(ZᵀWZ, ZᵀWy, Σ w y², Σ w²)``: all a weighted ridge fit needs from its rows."""
    return jnp.matmul(Z.T, w[:, None] * Z, precision="highest"), jnp.matmul(Z.T, w * y, precision="highest"), jnp.sum(w * y**2), jnp.sum(w**2)


class _Spectrum(NamedTuple):
    sw: Array
    zbar: Array
    ybar: Array
    yyc: Array
    s: Array
    V: Array
    c: Array
    lams: Array
    inv: Array


def _spectrum(G: Array, b: Array, yy: Array, grid: Array) -> _Spectrum:
    """The centred problem's eigendecomposition, shared by the penalty criteria.

    The intercept is profiled out by weighted centring; one eigendecomposition of the
    centred Gram ``G_c = V diag(s) Vᵀ`` gives every penalty ``λ = g · tr(G_c)/p`` on the
    relative grid ``g`` at once: ``inv[j] = 1 / (s + λ_j)`` and ``β_j = V (c · inv[j])``.
    """
    sw = G[0, 0]
    zbar, ybar = G[0, 1:] / sw, b[0] / sw
    Gc = G[1:, 1:] - sw * jnp.outer(zbar, zbar)
    bc = b[1:] - sw * zbar * ybar
    s, V = jnp.linalg.eigh(Gc)
    s = jnp.maximum(s, 0.0)
    lams = grid * _centred_scale(G)
    inv = 1.0 / (s[None, :] + lams[:, None])
    return _Spectrum(sw, zbar, ybar, yy - sw * ybar**2, s, V, jnp.matmul(V.T, bc, precision="highest"), lams, inv)


def _centred_scale(G: Array) -> Array:
    """``tr(G_c)/p`` of the centred Gram ``G_c`` (the unit of the relative penalty grid)."""
    sw = G[0, 0]
    zbar = G[0, 1:] / sw
    return (jnp.trace(G[1:, 1:]) - sw * jnp.sum(zbar**2)) / (G.shape[0] - 1)


def _gcv_score(sp: _Spectrum, sum_w2: Array) -> tuple[Array, Array]:
    """GCV(λ) = (RSS/Σw) / (1 − df/n_eff)² with Kish's effective size ``n_eff = (Σw)² / Σw²``
    (Golub, Heath & Wahba, 1979), for every grid penalty; and which are admissible."""
    rss = jnp.maximum(sp.yyc - jnp.sum(sp.c[None, :] ** 2 * (2 * sp.inv - sp.s[None, :] * sp.inv**2), axis=1), 0.0)
    df = 1.0 + jnp.sum(sp.s[None, :] * sp.inv, axis=1)
    n_eff = sp.sw**2 / sum_w2
    # Near-interpolating fits (df → n_eff) make RSS a float32 cancellation residue;
    # they are excluded rather than trusted.
    ok = df < 0.9 * n_eff
    return (rss / sp.sw) / jnp.where(ok, 1.0 - df / n_eff, 1.0) ** 2, ok


def _loo_score(sp: _Spectrum, Z: Array, y: Array, w: Array) -> tuple[Array, Array, Array]:
    """Exact weighted leave-one-out error (PRESS) for every grid penalty, which are
    admissible, and the standard error of each score.

    Row i left out entirely (all its weight) predicts ``y_i − e_i / (1 − h_i)`` with
    ``h_i = w_i/Σw + w_i (z_i − z̄)ᵀ(G_c + λI)⁻¹(z_i − z̄)`` (Sherman–Morrison), so
    ``LOO(λ) = Σ w_i (e_i / (1 − h_i))² / Σw`` costs one projection of the design on the
    eigenvectors beyond GCV. Unlike GCV, which gives every row the average leverage, it
    does not credit a fit for chasing a few high-leverage, high-variance targets (doubly
    robust pseudo-outcomes). Penalties whose largest leverage exceeds 0.99 are excluded.
    A bootstrap count is a weight, so duplicated rows are left out together. The standard
    error is the ratio estimator's, ``sqrt(Σ (w_i ẽ_i² − LOO·w_i)²) / Σw`` (``ẽ_i`` the
    left-out residual): for unit weights, the sample standard deviation of ``ẽ_i²`` over ``√n``.
    """
    # (Z − z̄)V as ZV − z̄V: the product reads the stored design (a centred copy would be
    # a fusion that recomputes the feature map, e.g. RFF cosines, for every criterion).
    U = jnp.matmul(Z, jnp.concatenate([jnp.zeros_like(sp.V[:1]), sp.V]), precision="highest") - jnp.matmul(sp.zbar, sp.V, precision="highest")[None, :]
    resid = (y - sp.ybar)[:, None] - jnp.matmul(U * sp.c[None, :], sp.inv.T, precision="highest")
    h = (w / sp.sw)[:, None] + w[:, None] * jnp.matmul(U**2, sp.inv.T, precision="highest")
    ok = jnp.max(jnp.where(w[:, None] > 0, h, 0.0), axis=0) < 0.99
    loss = w[:, None] * (resid / jnp.where(ok[None, :], 1.0 - h, 1.0)) ** 2
    score = jnp.sum(loss, axis=0) / sp.sw
    se = jnp.sqrt(jnp.sum((loss - score[None, :] * w[:, None]) ** 2, axis=0)) / sp.sw
    return score, ok, se


def _best(score: Array, ok: Array) -> Array:
    """Index of the best admissible grid penalty (the largest if none is admissible)."""
    return jnp.where(jnp.any(ok), jnp.argmin(jnp.where(ok, score, jnp.inf)), score.shape[0] - 1)


def _one_se(sp: _Spectrum, score: Array, ok: Array, se: Array) -> Array:
    """Index of the largest admissible penalty whose score is within one standard error of
    the best score (the one-standard-error rule of Breiman et al., 1984)."""
    best = _best(score, ok)
    within = ok & (score <= score[best] + se[best])
    return jnp.where(jnp.any(ok), jnp.argmax(jnp.where(within, sp.lams, -jnp.inf)), best)


def _select(sp: _Spectrum, best: Array) -> tuple[Array, Array]:
    """Coefficients at grid penalty ``best``."""
    beta = jnp.matmul(sp.V, sp.c * sp.inv[best], precision="highest")
    intercept = sp.ybar - jnp.matmul(sp.zbar, beta, precision="highest")
    return jnp.concatenate([intercept[None], beta]), sp.lams[best]


CRITERIA = ("gcv", "loo", "loo_1se")  # penalty-selection criteria of Ridge


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
    penalty_grid : optional relative grid (static tuple); when given, the penalty is
        chosen per fit among ``g · tr(G_c)/p`` by ``criterion`` and ``penalty`` is
        ignored. The choice is reported in ``LinearParams.penalty``.
    criterion : ``"gcv"`` (generalised cross-validation, from the Gram matrix alone),
        ``"loo"`` (exact leave-one-out, one more pass over the design; robust to
        heavy-tailed, heteroscedastic targets such as doubly robust pseudo-outcomes), or
        ``"loo_1se"``: the largest penalty whose leave-one-out error is within one
        standard error of the smallest — a fit that only acts on structure the data
        distinguish from noise (the X-learner's default final stage).
    crossfit_tuning : how ``crossfit_predict`` selects penalties. ``"shared"`` (default):
        one relative penalty ``g`` selected on all rows, applied to fold k's fit as
        ``g · tr(G_c,k)/p`` — one eigendecomposition instead of K, so only that one
        discrete choice sees a row's own label (as when nuisance hyper-parameters are
        tuned once before cross-fitting). ``"fold"``: each fold's fit selects its own
        from its training rows alone. ``"shared"`` is the default because it routes as well
        at a fraction of the cost (``docs/design.md``).
    _direct_moments : (private, for the study engine) how ``crossfit_predict`` builds the all-rows Gram matrix. ``False``
        (default): as the sum of the folds' (one pass over the rows). ``True``: by the same
        expression as ``fit`` (one more pass), so that under ``jit`` a fit of another model
        on the same rows and weights — another method of a study — shares the Gram matrix
        and its eigendecomposition. The same estimator either way (to float rounding); the
        study engine sets it, single fits and bootstraps do not (there the extra pass buys nothing).
    """

    penalty: float = hyper_field(1.0)
    features: FeatureMap = Identity()
    penalty_grid: tuple[float, ...] | None = None
    criterion: str = "gcv"
    crossfit_tuning: str = "shared"
    _direct_moments: bool = dataclasses.field(default=False, repr=False)
    task = "regression"

    def __post_init__(self):
        if self.criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}, got {self.criterion!r}")
        if self.crossfit_tuning not in ("shared", "fold"):
            raise ValueError(f"crossfit_tuning must be 'shared' or 'fold', got {self.crossfit_tuning!r}")

    def _solve(self, G, b, yy, sum_w2, penalty, Z, y, w) -> tuple[Array, Array]:
        if self.penalty_grid is None:
            return _solve_psd(G, b, penalty), penalty
        sp, _, _, pick = self._scores(G, b, yy, sum_w2, Z, y, w)
        return _select(sp, pick)

    def _scores(self, G, b, yy, sum_w2, Z, y, w) -> tuple[_Spectrum, Array, Array, Array]:
        """The spectrum, the criterion at every grid penalty, which are admissible, and
        the index of the selected one."""
        sp = _spectrum(G, b, yy, jnp.asarray(self.penalty_grid, G.dtype))
        if self.criterion == "gcv":
            score, ok = _gcv_score(sp, sum_w2)
            return sp, score, ok, _best(score, ok)
        score, ok, se = _loo_score(sp, Z, y, w)
        pick = _best(score, ok) if self.criterion == "loo" else _one_se(sp, score, ok, se)
        return sp, score, ok, pick

    def hyper(self) -> dict[str, Array]:
        return {"penalty": jnp.asarray(self.penalty, jnp.float32), **self.features.hyper()}

    def fit(self, key: PRNGKey, X: Array, y: Array, weight: Array, hyper: Hyper | None = None) -> LinearParams:
        check_xyw(X, y, weight)
        hyper = self.hyper() if hyper is None else hyper
        fparams = self.features.init(key, X.shape[1], hyper)
        Z, x0 = _centred_design(self.features, fparams, X, weight)
        y0 = weighted_mean(y, weight)
        yc = y - y0
        coef, pen = self._solve(*_moments(Z, yc, weight), hyper["penalty"], Z, yc, weight)
        coef = coef.at[0].add(y0 - jnp.matmul(x0, coef[1:], precision="highest"))
        return LinearParams(coef, fparams, jnp.zeros((), Z.dtype), jnp.asarray(pen, Z.dtype))

    def predict(self, params: LinearParams, X: Array) -> Array:
        return jnp.matmul(_design(self.features, params.features, X), params.coef, precision="highest")

    def crossfit_predict(
        self, key: PRNGKey, X: Array, y: Array, weight: Array, folds: Folds, hyper: Hyper | None = None
    ) -> tuple[Array, Hyper]:
        """Out-of-fold predictions from one pass over the data.

        Each fold's Gram matrix ``Z_kᵀ W_k Z_k`` is built once; the training Gram of
        fold k is the sum of the other folds' own, so K fits cost one pass plus K small solves.
        ``hyper["penalty"]`` may be () or (K,) (one penalty per fold's fit).

        Returns
        -------
        prediction : (n,) array
        used : the hyper-parameters of the K fits, ``"penalty"`` as a (K,) array (the selected
            choices when the penalty is selected); pass it back with ``penalty_grid=None``
            to refit with the tuning held fixed.
        """
        check_xyw(X, y, weight)
        hyper = self.hyper() if hyper is None else hyper
        fparams = self.features.init(key, X.shape[1], hyper)
        Z, _ = _centred_design(self.features, fparams, X, weight)
        y0 = weighted_mean(y, weight)  # one shift for every fold: each fold's intercept absorbs it
        y = y - y0
        pad = lambda a: jnp.concatenate([a, jnp.zeros((1,) + a.shape[1:], a.dtype)])
        Zg, wg, yg = pad(Z)[folds.members], pad(weight)[folds.members], pad(y)[folds.members]
        Gk = jnp.einsum("kmp,kmq->kpq", Zg * wg[..., None], Zg, precision="highest")
        bk = jnp.einsum("kmp,km->kp", Zg, wg * yg, precision="highest")
        yyk = jnp.sum(wg * yg**2, axis=1)
        w2k = jnp.sum(wg**2, axis=1)
        if self._direct_moments:
            total = _moments(Z, y, weight)  # the same expression as ``fit``'s: shared under jit
        else:
            total = [a.sum(0) for a in (Gk, bk, yyk, w2k)]
        # Fold k trains on the other folds: their moments summed, never the total minus fold k's own.
        # A sum of positive semi-definite pieces stays so to rounding of its own scale; the difference
        # cancels when fold k carries much of the total, and lost positive-definiteness in float32.
        # Summed by element-wise additions in fold order, not as a product with a 0/1 matrix: a matrix
        # product's rounding depends on its free dimensions, which include a vmapped batch of runs.
        K = folds.n_folds
        G, b, yy, w2 = (jnp.stack([functools.reduce(jnp.add, [a[j] for j in range(K) if j != k]) for k in range(K)])
                        for a in (Gk, bk, yyk, w2k))
        if self.penalty_grid is not None and self.crossfit_tuning == "shared":
            # One relative penalty g, selected on all rows, is applied to every fold's fit
            # as λ_k = g · tr(G_c,k)/p: one eigendecomposition instead of K.
            _, _, _, pick = self._scores(*total, Z, y, weight)
            g = jnp.asarray(self.penalty_grid, Z.dtype)[pick]
            used = g * jax.vmap(_centred_scale)(G)
            coefs = jax.vmap(_solve_psd)(G, b, used)
        else:
            penalty = jnp.broadcast_to(jnp.asarray(hyper["penalty"], Z.dtype), (folds.n_folds,))
            train_w = jnp.where(folds.held_out(), 0.0, weight[None, :])
            coefs, used = jax.vmap(self._solve, in_axes=(0, 0, 0, 0, 0, None, None, 0))(
                G, b, yy, w2, penalty, Z, y, train_w
            )
        return jnp.sum(Z * coefs[folds.fold_id], axis=1) + y0, {**hyper, "penalty": used}


GCV_GRID = tuple(10.0 ** (k / 2) for k in range(-10, 5))  # 1e-5 … 1e2, half decades (no JAX at import)


def RandomFeatureRidge(
    n_features: int = 256, bandwidth: float = 2.0, penalty: float | str = "gcv"
) -> Ridge:
    """Random Fourier feature (RBF kernel) ridge: :class:`Ridge` on :class:`RandomFourier` features.

    ``penalty="gcv"`` (default) selects the penalty per fit by generalised
    cross-validation on the relative grid ``GCV_GRID``, ``"loo"`` by exact leave-one-out
    error on the same grid, ``"loo_1se"`` by the one-standard-error rule on it (see
    :class:`Ridge`); a number fixes it. On a few raw features GCV, which gives every row the average
    leverage, can pick a penalty so small that the fit swings between rows; ``"loo"`` does not
    (``docs/design.md``).
    """
    if isinstance(penalty, str) and penalty not in CRITERIA:
        raise ValueError(f"penalty must be a number or one of {CRITERIA}, got {penalty!r}")
    if penalty in CRITERIA:
        return Ridge(penalty=1.0, features=RandomFourier(n_features, bandwidth), penalty_grid=GCV_GRID, criterion=penalty)
    return Ridge(penalty=float(penalty), features=RandomFourier(n_features, bandwidth))


@dataclasses.dataclass(frozen=True)
class Logistic:
    """Weighted logistic regression fitted by damped Newton's method (IRLS with a line search).

    Minimises ``−Σ_i w_i [y_i log p_i + (1 − y_i) log(1 − p_i)] + ½ penalty |β|²``.
    Starts at the intercept-only solution; each Newton step's largest coordinate is capped
    at ``max_step`` (a trust region for separable data) and the step is then cut by 4 until
    the objective decreases by Armijo's rule (backtracking: without it the iteration can
    oscillate on quasi-separable data far from the optimum). Stops when the largest step
    coordinate is below ``tol · (1 + max|β|)`` or after ``n_iter`` steps; ``grad_norm`` in
    the returned params reports convergence.

    Attributes
    ----------
    penalty : L2 penalty (hyper-parameter); 0 gives the unpenalised MLE.
    features : feature map.
    n_iter : the most Newton iterations (static).
    max_step : cap on the largest coordinate of one Newton step.
    n_steps : step lengths tried by the line search, ``1, ¼, …, 4^-(n_steps−1)`` (static).
    tol : relative step size at which the iteration stops (0: always ``n_iter`` steps).
    """

    penalty: float = hyper_field(1.0)
    features: FeatureMap = Identity()
    n_iter: int = 50
    max_step: float = 5.0
    tol: float = 1e-5
    n_steps: int = 6
    task = "classification"

    def hyper(self) -> dict[str, Array]:
        return {"penalty": jnp.asarray(self.penalty, jnp.float32), **self.features.hyper()}

    def fit(self, key: PRNGKey, X: Array, y: Array, weight: Array, hyper: Hyper | None = None) -> LinearParams:
        check_xyw(X, y, weight)
        hyper = self.hyper() if hyper is None else hyper
        fparams = self.features.init(key, X.shape[1], hyper)
        Z, x0 = _centred_design(self.features, fparams, X, weight)
        p = Z.shape[1]
        pen = _penalty_diag(p, hyper["penalty"], Z.dtype)
        ybar = jnp.clip(jnp.sum(weight * y) / jnp.sum(weight), 1e-6, 1 - 1e-6)
        beta0 = jnp.zeros((p,), Z.dtype).at[0].set(jnp.log(ybar) - jnp.log1p(-ybar))

        def gradient(beta):
            mu = jax.nn.sigmoid(jnp.matmul(Z, beta, precision="highest"))
            return jnp.matmul(Z.T, weight * (mu - y), precision="highest") + pen * beta, mu

        def objective(eta, beta):  # the penalised log-loss, stable for any linear predictor eta
            return jnp.sum(weight * (jax.nn.softplus(eta) - y * eta)) + 0.5 * jnp.sum(pen * beta**2)

        def step(state):
            i, beta, _ = state
            g, mu = gradient(beta)
            H = jnp.matmul(Z.T, (weight * mu * (1 - mu))[:, None] * Z, precision="highest") + jnp.diag(pen)
            H = H + (1e-8 * jnp.trace(H) / p + 1e-12) * jnp.eye(p, dtype=Z.dtype)
            delta = jnp.linalg.solve(H, g)
            size = jnp.max(jnp.abs(delta))
            move = jnp.minimum(1.0, self.max_step / (size + 1e-12)) * delta
            # Backtracking: the longest step 4^-j with f(β − t·move) ≤ f(β) − 1e-4·t·gᵀmove, up to float32
            # rounding of f (near the optimum every decrease is below it; the full step is then taken).
            eta, d_eta = jnp.matmul(Z, beta, precision="highest"), jnp.matmul(Z, move, precision="highest")
            f0 = objective(eta, beta)
            slope = jnp.dot(g, move, precision="highest")
            slack = 8 * jnp.finfo(Z.dtype).eps * (jnp.abs(f0) + 1.0)

            def shorter(carry):  # cut the step by 4 until Armijo's condition holds (at most n_steps tries)
                j, t, _ = carry
                return j + 1, 0.25 * t, objective(eta - 0.25 * t * d_eta, beta - 0.25 * t * move)

            def too_long(carry):
                j, t, f = carry
                return (j < self.n_steps - 1) & ~(f <= f0 - 1e-4 * t * slope + slack)

            one = jnp.ones((), Z.dtype)
            _, t, _ = jax.lax.while_loop(too_long, shorter, (jnp.zeros((), jnp.int32), one,
                                                             objective(eta - d_eta, beta - move)))
            taken = t * move
            done = jnp.max(jnp.abs(taken)) <= self.tol * (1.0 + jnp.max(jnp.abs(beta)))
            return i + 1, beta - taken, done

        _, beta, _ = jax.lax.while_loop(
            lambda s: (s[0] < self.n_iter) & ~s[2], step, (jnp.zeros((), jnp.int32), beta0, jnp.zeros((), bool))
        )
        g, _ = gradient(beta)
        beta = beta.at[0].add(-jnp.matmul(x0, beta[1:], precision="highest"))  # on the raw features
        return LinearParams(beta, fparams, jnp.linalg.norm(g) / jnp.sum(weight), hyper["penalty"])

    def predict(self, params: LinearParams, X: Array) -> Array:
        return jax.nn.sigmoid(jnp.matmul(_design(self.features, params.features, X), params.coef, precision="highest"))
