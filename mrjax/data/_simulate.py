"""Simulators with known truth: ψ, η, Δ and the propensity on every row.

Three designs (all seedable by key, all traceable and vmappable over keys):

* :func:`paper_like` — 50 correlated Gaussian features, nonlinear ψ and Δ, gold rows
  a random subset (constant propensity ``n_gold / n``), as in the paper's HealthBench
  protocol.
* :func:`selection_on_features` — gold labels more likely for some queries:
  ``p(x) = sigmoid(logit(n_gold / n) + overlap * x_0)``; larger ``overlap`` means
  more extreme propensities (weaker overlap).
* :func:`heteroscedastic` — noise scale grows with ``|x_2|`` and is Student-t(3).
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax._hyper import hyper_field
from mrjax._typing import Array, PRNGKey
from mrjax.data._dataset import Dataset


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """Description of a simulated design: shapes and switches static, numbers sweepable.

    Attributes
    ----------
    n_features : feature dimension d.
    correlation : AR(1) correlation ρ of the Gaussian features (Σ_ij = ρ^|i-j|).
    bias_strength : multiplier of the heterogeneous part of Δ(x).
    bias_offset : constant part of Δ(x) (a global shift that mean-shift can remove).
    gold_noise, preference_noise : noise standard deviations of r and y.
    preference_scale : preference labels are ``preference_scale * (η + noise)``.
    overlap : 0 for gold rows drawn at random; otherwise the slope of the
        propensity's logit in ``x_0`` (static: 0 is a different design, not a value).
    heteroscedastic : noise scale ``σ (0.5 + |x_2|)`` and Student-t(3) noise.
    """

    n_features: int = 50
    correlation: float = hyper_field(0.5)
    bias_strength: float = hyper_field(1.0)
    bias_offset: float = hyper_field(0.2)
    gold_noise: float = hyper_field(0.5)
    preference_noise: float = hyper_field(0.5)
    preference_scale: float = hyper_field(1.0)
    overlap: float = 0.0
    heteroscedastic: bool = False

    def numbers(self) -> dict:
        """The design's sweepable numbers as float32 arrays (``learners.structure`` leaves them out of
        the static key, so a study compiled for one value runs any other)."""
        return {f.name: jnp.asarray(getattr(self, f.name), jnp.float32) for f in dataclasses.fields(self)
                if f.metadata.get("hyper")}


class Truth(NamedTuple):
    """Known truth on a set of rows.

    Attributes
    ----------
    quality_gain : (n,) ψ(x), the gold-standard gain of the primary model.
    preference_gain : (n,) η(x), what a preference evaluation measures on average.
    bias : (n,) Δ(x) = ψ(x) − η(x).
    propensity : (n,) P(gold | x).
    """

    quality_gain: Array
    preference_gain: Array
    bias: Array
    propensity: Array


class Simulation(NamedTuple):
    """A simulated training set, a test set, and the truth on both.

    Attributes
    ----------
    data : Dataset with n = n_gold + n_preference training rows.
    truth : Truth on the training rows.
    gold_label : (n,) a gold label ``r = ψ + ε`` for every training row (All-Golden oracle).
    test_features : (n_test, d)
    test_truth : Truth on the test rows.
    test_gold_label : (n_test,) noisy gold labels of the test rows.
    """

    data: Dataset
    truth: Truth
    gold_label: Array
    test_features: Array
    test_truth: Truth
    test_gold_label: Array


def quality_gain_fn(x: Array) -> Array:
    """ψ(x): nonlinear gold-standard gain of the primary model."""
    return 0.6 * jnp.tanh(x[:, 0]) + 0.4 * jnp.sin(1.5 * x[:, 1]) + 0.25 * x[:, 2] * x[:, 3] - 0.1


def bias_fn(x: Array, strength: float, offset: float) -> Array:
    """Δ(x): heterogeneous preference bias (e.g. a judge favouring long answers)."""
    hetero = 0.6 * jnp.tanh(1.5 * x[:, 5]) - 0.4 * x[:, 0] + 0.3 * (x[:, 1] ** 2 - 1.0)
    return strength * hetero + offset


def _features(key: PRNGKey, n: int, config: SimulationConfig) -> Array:
    d = config.n_features
    idx = jnp.arange(d)
    cov = config.correlation ** jnp.abs(idx[:, None] - idx[None, :])
    chol = jnp.linalg.cholesky(cov)
    return jnp.matmul(jax.random.normal(key, (n, d)), chol.T, precision="highest")


def _noise(key: PRNGKey, x: Array, scale: float, config: SimulationConfig) -> Array:
    n = x.shape[0]
    if config.heteroscedastic:
        eps = jax.random.t(key, 3.0, (n,)) / jnp.sqrt(3.0)
        return scale * (0.5 + jnp.abs(x[:, 2])) * eps
    return scale * jax.random.normal(key, (n,))


def _truth(x: Array, propensity: Array, config: SimulationConfig) -> Truth:
    psi = quality_gain_fn(x)
    delta = bias_fn(x, config.bias_strength, config.bias_offset)
    return Truth(psi, psi - delta, delta, propensity)


def simulate(
    key: PRNGKey, n_gold: int, n_preference: int, n_test: int, config: SimulationConfig = SimulationConfig()
) -> Simulation:
    """Draw one dataset from the design ``config``.

    With ``config.overlap == 0`` exactly ``n_gold`` rows are gold (the first ones;
    rows are exchangeable). Otherwise each row is gold with probability ``p(x)``
    whose mean is about ``n_gold / n``; the count is random but shapes stay fixed.
    """
    if config.n_features < 6:
        raise ValueError(f"n_features must be at least 6 for these designs, got {config.n_features}")
    n = n_gold + n_preference
    k_x, k_xt, k_t, k_r, k_y, k_rt = jax.random.split(key, 6)
    x = _features(k_x, n, config)
    x_test = _features(k_xt, n_test, config)
    base = n_gold / n
    if config.overlap == 0.0:
        prop = jnp.full((n,), base)
        prop_test = jnp.full((n_test,), base)
        t = (jnp.arange(n) < n_gold).astype(x.dtype)
    else:
        logit0 = jnp.log(base) - jnp.log1p(-base)
        prop = jax.nn.sigmoid(logit0 + config.overlap * x[:, 0])
        prop_test = jax.nn.sigmoid(logit0 + config.overlap * x_test[:, 0])
        t = jax.random.bernoulli(k_t, prop).astype(x.dtype)
    truth = _truth(x, prop, config)
    test_truth = _truth(x_test, prop_test, config)
    r = truth.quality_gain + _noise(k_r, x, config.gold_noise, config)
    y = config.preference_scale * (truth.preference_gain + _noise(k_y, x, config.preference_noise, config))
    label = jnp.where(t > 0.5, r, y)
    data = Dataset(x, t, label, jnp.ones((n,), x.dtype))
    r_test = test_truth.quality_gain + _noise(k_rt, x_test, config.gold_noise, config)
    return Simulation(data, truth, r, x_test, test_truth, r_test)


def paper_like(key: PRNGKey, n_gold: int = 100, n_preference: int = 3900, n_test: int = 500, **overrides) -> Simulation:
    """Design (a): random gold subset, 50 correlated features, nonlinear ψ and Δ."""
    return simulate(key, n_gold, n_preference, n_test, SimulationConfig(**overrides))


def selection_on_features(
    key: PRNGKey, n_gold: int = 100, n_preference: int = 3900, n_test: int = 500, overlap: float = 1.0, **overrides
) -> Simulation:
    """Design (b): gold labels more likely where ``x_0`` is large; ``overlap`` sets how much."""
    return simulate(key, n_gold, n_preference, n_test, SimulationConfig(overlap=overlap, **overrides))


def heteroscedastic(key: PRNGKey, n_gold: int = 100, n_preference: int = 3900, n_test: int = 500, **overrides) -> Simulation:
    """Design (c): heteroscedastic, heavy-tailed (Student-t(3)) label noise."""
    return simulate(key, n_gold, n_preference, n_test, SimulationConfig(heteroscedastic=True, **overrides))
