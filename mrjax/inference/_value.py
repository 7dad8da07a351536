"""The value of a fitted routing policy under draws of ψ: policy value and efficiency gain.

The deployed policy is the plug-in one, fixed by the point estimate ψ̂: at cost weight
``w`` it sends ``q`` to the primary iff ``ψ̂(q) > w·ΔC(q)``. Its value on a set of
queries is a linear functional of the true ψ,

    V(w) = mean_q (ψ(q) − w·ΔC(q)) · 1[ψ̂(q) > w·ΔC(q)],

and its efficiency gain at usage ``u`` (the paper's protocol, against the *expected*
random router) is ``Σ_{top u·n by ψ̂} ψ(q) − u·Σ_q ψ(q)``. Replacing ψ by bootstrap or
posterior draws of ψ̂ gives draws of both; ``interval`` and ``simultaneous_band`` turn
them into pointwise intervals and bands over ``w`` or ``u``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from mrjax._typing import Array
from mrjax.router._metrics import efficiency_curve


def _check(draws: Array, point: Array) -> None:
    if draws.ndim != 2:
        raise ValueError(f"draws: expected shape (B, n), got {draws.shape}")
    if point.shape != draws.shape[1:]:
        raise ValueError(f"point: expected shape ({draws.shape[1]},) to match draws {draws.shape}, got {point.shape}")


def policy_value(psi: Array, point: Array, cost_weights: Array, cost_primary=1.0, cost_alternative=0.0) -> Array:
    """Value per query of the plug-in policy of ``point`` when the true gain is ``psi``.

    Parameters
    ----------
    psi : (n,) or (B, n) gains to score with (the truth, or draws of ψ̂).
    point : (n,) ψ̂ that defines the policy.
    cost_weights : (W,) cost weights.
    cost_primary, cost_alternative : () or (n,) per-query costs.

    Returns
    -------
    (W,) or (B, W) array: ``mean_q (ψ(q) − w·ΔC(q)) · 1[ψ̂(q) > w·ΔC(q)]``.
    """
    w = jnp.atleast_1d(jnp.asarray(cost_weights, point.dtype))
    gap = jnp.broadcast_to(jnp.asarray(cost_primary, point.dtype) - jnp.asarray(cost_alternative, point.dtype),
                           point.shape)
    price = w[:, None] * gap[None, :]  # (W, n)
    routed = point[None, :] > price

    def one(p):
        return jnp.mean(jnp.where(routed, p[None, :] - price, 0.0), axis=1)

    return one(psi) if psi.ndim == 1 else jax.vmap(one)(psi)


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
