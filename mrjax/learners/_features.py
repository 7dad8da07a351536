"""Feature maps for linear learners: identity and random Fourier features (RBF kernel)."""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax._typing import Array, Hyper, PRNGKey
from mrjax._hyper import hyper_field


class FeatureParams(NamedTuple):
    """Parameters of a feature map.

    Attributes
    ----------
    frequencies : (d, D) array, already divided by the lengthscale (empty for identity).
    phase : (D,) array (empty for identity).
    """

    frequencies: Array
    phase: Array


@dataclasses.dataclass(frozen=True)
class Identity:
    """The raw features."""

    def hyper(self) -> dict[str, Array]:
        return {}

    def init(self, key: PRNGKey, d: int, hyper: Hyper) -> FeatureParams:
        return FeatureParams(jnp.zeros((0,)), jnp.zeros((0,)))

    def apply(self, params: FeatureParams, X: Array) -> Array:
        return X


@dataclasses.dataclass(frozen=True)
class RandomFourier:
    """Random Fourier features approximating the RBF kernel (Rahimi & Recht, 2007).

    ``z(x) = sqrt(2 / D) cos(x ω / ℓ + b)`` with ``ω ~ N(0, I)``, ``b ~ U(0, 2π)``, so that
    ``z(x)·z(x') → exp(-|x − x'|² / (2ℓ²))`` as ``D`` grows.

    Attributes
    ----------
    n_features : D (static).
    bandwidth : the lengthscale in units of ``sqrt(d)``, ``ℓ = bandwidth * sqrt(d)``
        (on standardised features ``|x − x'|² ≈ 2d``). A hyper-parameter: sweepable.
    """

    n_features: int = 256
    bandwidth: float = hyper_field(1.0)

    def hyper(self) -> dict[str, Array]:
        return {"bandwidth": jnp.asarray(self.bandwidth, jnp.float32)}

    def init(self, key: PRNGKey, d: int, hyper: Hyper) -> FeatureParams:
        k_w, k_b = jax.random.split(key)
        lengthscale = hyper["bandwidth"] * jnp.sqrt(float(d))
        freq = jax.random.normal(k_w, (d, self.n_features)) / lengthscale
        phase = jax.random.uniform(k_b, (self.n_features,), maxval=2 * jnp.pi)
        return FeatureParams(freq, phase)

    def apply(self, params: FeatureParams, X: Array) -> Array:
        return jnp.sqrt(2.0 / self.n_features) * jnp.cos(jnp.matmul(X, params.frequencies, precision="highest") + params.phase[None, :])
