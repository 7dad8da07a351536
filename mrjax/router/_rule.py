"""The routing rule: send a query to the primary model iff ``ψ̂(q) − w (C_p(q) − C_a(q)) > 0``."""
from __future__ import annotations

import jax.numpy as jnp

from mrjax._typing import Array, ArrayLike
from mrjax.router._tradeoff import cost_gap, decide


def route(
    quality_gain: Array,
    cost_weight: ArrayLike,
    cost_primary: ArrayLike = 1.0,
    cost_alternative: ArrayLike = 0.0,
) -> Array:
    """Routing decisions for one or many cost weights at once.

    The comparison is made against each query's breakpoint ``ψ̂(q) / (C_p(q) − C_a(q))``
    (see ``router.breakpoints``), so decisions agree exactly with the trade-off curves.

    Parameters
    ----------
    quality_gain : (n,) array, ψ̂(q) per query.
    cost_weight : () or (W,) array of cost weights (any sign: ``w < 0`` also routes
        queries with ``ψ̂ ≤ 0``).
    cost_primary, cost_alternative : () or (n,) arrays of per-query costs
        (unit costs 1 and 0 by default, making the rule ``ψ̂ > w``).

    Returns
    -------
    to_primary : bool array, (n,) for a scalar ``w`` or (W, n) for a vector.
    """
    psi = jnp.asarray(quality_gain)
    if psi.ndim != 1:
        raise ValueError(f"quality_gain: expected shape (n,), got {psi.shape}")
    gap, _ = cost_gap(psi, cost_primary, cost_alternative)
    w = jnp.asarray(cost_weight, psi.dtype)
    if w.ndim > 1:
        raise ValueError(f"cost_weight: expected a scalar or shape (W,), got {w.shape}")
    return decide(psi, gap, w)
