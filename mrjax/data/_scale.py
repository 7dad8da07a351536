"""Scale normalisation of preference labels onto the gold-standard scale.

Gold and preference gains live on different scales. Before estimating the bias,
the preference labels are multiplied by one constant ``c`` so the two sources are
comparable (Meta-Router, arXiv 2509.25535, §4: variance matching is the default).
"""
from __future__ import annotations

from typing import Literal, NamedTuple

import jax.numpy as jnp

from mrjax._typing import Array
from mrjax.data._dataset import Dataset

ScaleMethod = Literal["variance", "magnitude", "wasserstein", "none"]
SCALE_METHODS = ("variance", "magnitude", "wasserstein", "none")


class ScaleInfo(NamedTuple):
    """The constant applied to the preference labels.

    Attributes
    ----------
    constant : () array
        ``c`` such that the preference labels used downstream are ``c * y``.
    """

    constant: Array


def _weighted_moments(values: Array, weight: Array) -> tuple[Array, Array]:
    w = weight / jnp.sum(weight)
    mean = jnp.sum(w * values)
    return mean, jnp.sum(w * (values - mean) ** 2)


def _weighted_quantiles(values: Array, weight: Array, grid: Array) -> Array:
    """Inverse of the weighted empirical CDF at ``grid`` (a step function, exact)."""
    order = jnp.argsort(values)
    cw = jnp.cumsum(weight[order])
    cw = cw / cw[-1]
    idx = jnp.clip(jnp.searchsorted(cw, grid, side="left"), 0, values.shape[0] - 1)
    return values[order][idx]


def scale_constant(data: Dataset, method: ScaleMethod = "variance", n_quantiles: int = 512) -> Array:
    """The constant ``c`` mapping preference labels onto the gold scale.

    Parameters
    ----------
    data : Dataset
    method : {"variance", "magnitude", "wasserstein", "none"}
        ``variance``: ``c = sd(r) / sd(y)``; ``magnitude``: ``c = mean|r| / mean|y|``;
        ``wasserstein``: ``c`` minimising the 1-D 2-Wasserstein distance between the
        gold labels and ``c * y`` (``∫F⁻¹G⁻¹ / ∫(G⁻¹)²`` on a quantile grid);
        ``none``: ``c = 1``. All moments use the sample weights.

    Returns
    -------
    c : () array; 1 where the preference spread is zero.
    """
    if method not in SCALE_METHODS:
        raise ValueError(f"scale method must be one of {SCALE_METHODS}, got {method!r}")
    o, t, w = data.label, data.is_gold, data.weight
    wg, wp = w * t, w * (1 - t)
    if method == "none":
        return jnp.ones((), o.dtype)
    if method == "variance":
        _, var_g = _weighted_moments(o, wg)
        _, var_p = _weighted_moments(o, wp)
        num, den = jnp.sqrt(var_g), jnp.sqrt(var_p)
    elif method == "magnitude":
        num = jnp.sum(wg * jnp.abs(o)) / jnp.sum(wg)
        den = jnp.sum(wp * jnp.abs(o)) / jnp.sum(wp)
    else:
        grid = (jnp.arange(n_quantiles, dtype=o.dtype) + 0.5) / n_quantiles
        qg = _weighted_quantiles(o, wg, grid)
        qp = _weighted_quantiles(o, wp, grid)
        num, den = jnp.mean(qg * qp), jnp.mean(qp * qp)
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 1.0)


def normalize_scale(data: Dataset, method: ScaleMethod = "variance") -> tuple[Dataset, ScaleInfo]:
    """Rescale the preference labels of ``data`` onto the gold scale.

    Returns the rescaled dataset and a :class:`ScaleInfo` carrying the constant used.
    Traceable: ``method`` is static, everything else may be traced or vmapped.
    """
    c = scale_constant(data, method)
    label = jnp.where(data.is_gold > 0.5, data.label, c * data.label)
    return data._replace(label=label), ScaleInfo(c)
