"""The value of a fitted routing policy under draws of ψ: policy value and efficiency gain.

The deployed policy is the plug-in one, fixed by the point estimate ψ̂: at cost weight
``w`` it sends ``q`` to the primary iff ``ψ̂(q) > w·ΔC(q)``. Its value on a set of
queries is a linear functional of the true ψ,

    V(w) = mean_q (ψ(q) − w·ΔC(q)) · 1[ψ̂(q) > w·ΔC(q)],

and its efficiency gain at usage ``u`` (the paper's protocol, against the *expected*
random router) is ``Σ_{top u·n by ψ̂} ψ(q) − u·Σ_q ψ(q)``. Replacing ψ by bootstrap or
posterior draws of ψ̂ gives draws of both; ``interval`` and ``simultaneous_band`` turn
them into pointwise intervals and bands over ``w`` or ``u``.

Those draws carry ψ̂'s sampling variability but not its bias; :func:`gold_corrected_value`
adds a cross-fitted correction from the gold labels (see there).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax._checks import unit_interval
from mrjax._typing import Array, PRNGKey
from mrjax.data._dataset import Dataset
from mrjax.data._folds import make_folds
from mrjax.inference._bootstrap import bootstrap_predict
from mrjax.router._fit import RouterConfig, RouterHyper, fit_router, predict_quality
from mrjax.router._metrics import efficiency_curve
from mrjax.router._tradeoff import breakpoints, cost_gap, routed_sum, tradeoff_curve


def _check(draws: Array, point: Array) -> None:
    if draws.ndim != 2:
        raise ValueError(f"draws: expected shape (B, n), got {draws.shape}")
    if point.shape != draws.shape[1:]:
        raise ValueError(f"point: expected shape ({draws.shape[1]},) to match draws {draws.shape}, got {point.shape}")


def policy_value(psi: Array, point: Array, cost_weights: Array, cost_primary=1.0, cost_alternative=0.0) -> Array:
    """Value per query of the plug-in policy of ``point`` when the true gain is ``psi``.

    Exact at every weight from ``point``'s sorted breakpoints (``router.tradeoff_curve``):
    ``O(n log n + B·n + W log n)``, memory independent of the number of weights.

    Parameters
    ----------
    psi : (n,) or (B, n) gains to score with (the truth, or draws of ψ̂).
    point : (n,) ψ̂ that defines the policy.
    cost_weights : () or (W,) cost weights.
    cost_primary, cost_alternative : () or (n,) per-query costs.

    Returns
    -------
    (W,) or (B, W) array: ``mean_q (ψ(q) − w·ΔC(q)) · 1[ψ̂(q) > w·ΔC(q)]``.
    """
    return tradeoff_curve(breakpoints(point, cost_primary, cost_alternative), cost_weights, psi).value


def policy_value_draws(draws: Array, point: Array, cost_weights: Array, cost_primary=1.0, cost_alternative=0.0
                       ) -> tuple[Array, Array]:
    """Draws ``(B, W)`` and point estimate ``(W,)`` of the plug-in policy's value (see :func:`policy_value`)."""
    _check(draws, point)
    return (policy_value(draws, point, cost_weights, cost_primary, cost_alternative),
            policy_value(point, point, cost_weights, cost_primary, cost_alternative))


def efficiency_gain(psi: Array, point: Array, grid: Array) -> Array:
    """Efficiency gain of the ranking by ``point`` scored with gains ``psi`` ((n,) or (B, n)).

    Total gain of the top ``u·n`` queries minus the expected random router's ``u·Σψ`` on
    the usage ``grid``; NaN past the usage where ``point`` turns non-positive.
    """
    grid = jnp.asarray(grid, point.dtype)

    def one(p):
        return efficiency_curve(point, p, grid) - grid * jnp.sum(p)

    return one(psi) if psi.ndim == 1 else jax.vmap(one)(psi)


def efficiency_gain_draws(draws: Array, point: Array, grid: Array) -> tuple[Array, Array]:
    """Draws ``(B, G)`` and point estimate ``(G,)`` of the efficiency gain (see :func:`efficiency_gain`)."""
    _check(draws, point)
    return efficiency_gain(draws, point, grid), efficiency_gain(point, point, grid)


class ValueEstimate(NamedTuple):
    """A gold-corrected policy value with a normal interval (each ``(W,)``).

    Attributes
    ----------
    estimate : plug-in value plus the cross-fitted gold-residual correction.
    lower, upper : the interval at the requested level.
    plug_in : the uncorrected plug-in value ``mean_q (ψ̂(q) − w·ΔC(q))·π̂(q)``.
    se : the standard error used.
    """

    estimate: Array
    lower: Array
    upper: Array
    plug_in: Array
    se: Array


def gold_corrected_value(
    key: PRNGKey,
    data: Dataset,
    X: Array,
    cost_weights: Array,
    config: RouterConfig = RouterConfig(),
    hyper: RouterHyper | None = None,
    level: float = 0.95,
    n_folds: int = 5,
    cost_primary=1.0,
    cost_alternative=0.0,
) -> ValueEstimate:
    """Value per query of the fitted plug-in policy on queries ``X``, corrected with gold labels.

    The plug-in value ``mean_q (ψ̂ − w·ΔC)·π̂`` inherits ψ̂'s bias — regularisation, and the
    winner's curse of evaluating ψ̂ on the queries it selected — which a bootstrap of ψ̂
    cannot see. The correction adds the mean over gold rows of ``(r_i − ψ̂₋ₖ(x_i))·π̂₋ₖ(x_i)``,
    with ``ψ̂₋ₖ`` the whole pipeline refitted without gold fold ``k`` and ``π̂₋ₖ`` its policy
    (K refits in one program, as bootstrap replicates whose weights zero one gold fold): a
    prediction-powered estimate (Angelopoulos et al., 2023) that is unbiased for the value
    when the gold rows are a random sample of the routed queries (the paper's design).
    The interval is normal with ``se² = s²·(1/n_gold + 1/m)``, ``s²`` the weighted variance
    of the corrected gold residuals (an upper bound for the test-set term, whose noise-free
    variance it contains). Under selection of gold rows on features it is not valid.
    """
    level = unit_interval("level", level)
    k_fit, k_fold = jax.random.split(key)
    fit, _ = fit_router(k_fit, data, config, hyper)
    point = predict_quality(config, fit, X)
    w = jnp.atleast_1d(jnp.asarray(cost_weights, point.dtype))
    plug = policy_value(point, point, w, cost_primary, cost_alternative)
    folds = make_folds(k_fold, data.is_gold, n_folds)
    gold = data.is_gold > 0.5
    out = folds.held_out() & gold[None, :]
    held = bootstrap_predict(k_fit, data, data.features, jnp.where(out, 0.0, 1.0), config, hyper, chunk=n_folds)
    psi_oof = held[folds.fold_id, jnp.arange(data.label.shape[0])]
    # The out-of-fold policy at the gold rows: a gold row is then a fresh query for both ψ̂₋ₖ
    # and its decision, as a test query is for ψ̂ (the full fit's decision there would be
    # chosen by a ψ̂ that saw the row's own label noise). Costs: the mean test cost gap.
    gap, _ = cost_gap(point, cost_primary, cost_alternative)
    bp = breakpoints(psi_oof, jnp.mean(gap), 0.0)
    gw = data.weight * gold
    total = jnp.sum(gw)
    resid = jnp.where(gold, data.label - psi_oof, 0.0)
    # Weighted first and second moments of the routed residuals at every weight at once.
    corr = routed_sum(bp, w, gw * resid) / total
    var = jnp.maximum(routed_sum(bp, w, gw * resid**2) / total - corr**2, 0.0)
    n_gold = total**2 / jnp.sum(gw**2)  # Kish effective size
    se = jnp.sqrt(var * (1.0 / n_gold + 1.0 / X.shape[0]))
    z = jax.scipy.stats.norm.ppf(0.5 + level / 2)
    est = plug + corr
    return ValueEstimate(est, est - z * se, est + z * se, plug, se)
