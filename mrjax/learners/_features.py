"""Feature maps for linear learners: identity and random Fourier features (RBF kernel)."""
from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax._typing import Array, Hyper, PRNGKey
from mrjax._hyper import hyper_field


# cos(t) = Σ_k (−1)^k t^(2k) / (2k)! on [−π, π]: truncation error below 2e-7 (its derivative's below 1e-6).
_COS_TAYLOR = tuple((-1) ** k / math.factorial(2 * k) for k in range(10))
# 2π split so that the first part times a reduction count below 2^15 is exact (Cody–Waite).
_TWO_PI_HI, _TWO_PI_LO = 6.28125, 2 * math.pi - 6.28125


def fast_cos(x: Array) -> Array:
    """``cos(x)`` by reduction to ``[−π, π]`` and a polynomial of ``t²``: within 1e-6 of the float64 cosine for
    ``|x| ≤ 10⁴`` (the reduction stays exact to ``|x| ≈ 4·10⁵``), and about 7× faster on CPU, where XLA's own
    ``cos`` costs ~6 ns per element."""
    k = jnp.round(x * (1.0 / (2 * math.pi)))
    t = (x - k * _TWO_PI_HI) - k * _TWO_PI_LO
    u = t * t
    p = jnp.full_like(u, _COS_TAYLOR[-1])
    for c in _COS_TAYLOR[-2::-1]:
        p = p * u + c
    return p


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
        # fast_cos: XLA's cos was a quarter of a default study's time on CPU.
        return jnp.sqrt(2.0 / self.n_features) * fast_cos(jnp.matmul(X, params.frequencies, precision="highest") + params.phase[None, :])
