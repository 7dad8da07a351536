"""Bayesian random-feature Meta-Router with numpyro: posterior draws of Δ(x) and ψ(x).

The model shares one random Fourier feature map ``φ(x)`` (a GP approximation with an
RBF kernel) between two functions: what a preference evaluation measures, ``η(x)``,
and the bias ``Δ(x)``; the gold-standard gain is their sum::

    η(x) = a_η + φ(x)·β_η,   Δ(x) = a_Δ + φ(x)·β_Δ,   ψ(x) = η(x) + Δ(x)
    β_η ~ N(0, s_η² I),      β_Δ ~ N(0, s_Δ² I),      a_η, a_Δ ~ N(0, 2²)
    gold rows:        r   ~ N(ψ(x), σ_G²)       (log-likelihood × weight)
    preference rows:  c·y ~ N(η(x), σ_P²)       (log-likelihood × λ · weight)

on labels centred and scaled by their weighted mean and standard deviation (``c`` is
the scale constant of ``data.scale_constant``). The plentiful preference rows pin
down η; the scarce gold rows inform Δ, shrunk towards 0 by its prior. Δ's posterior
enters ψ's directly — every draw of ψ is ``η + Δ`` from the same joint draw — so ψ's
intervals carry the bias's uncertainty. Under unconfoundedness (the source depends
on x only) the propensity does not enter a likelihood-based posterior.

With both noise scales fixed the model is linear-Gaussian and its posterior is known
in closed form (the tests check NUTS and SVI against it); by default the noise scales
get HalfNormal(1) priors on the standardised label scale.

Inference: ``"nuts"`` (one chain) or ``"svi"`` (a full-rank Gaussian guide, Adam), both
on whitened coefficients ``θ = m + L⁻ᵀ z``, where ``m`` and ``L Lᵀ`` are the posterior mean
and precision at plug-in noise scales: a linear change of variables (the model is
unchanged) that makes the sampler's target close to N(0, I), so NUTS needs few
leapfrog steps and the guide starts near the answer. Draws have the bootstrap's shape ``(S, m)``, so
``inference.interval``, ``policy_value_draws`` and ``route_with_uncertainty`` take either.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.hmc import hmc
from numpyro.infer.util import initialize_model
from numpyro.infer.autoguide import AutoMultivariateNormal
from numpyro.infer.initialization import init_to_value

from mrjax._checks import finite, integer
from mrjax._typing import Array, PRNGKey
from mrjax.data._dataset import Dataset, Standardizer, check_standardize, standardize
from mrjax.data._preprocess import preprocess
from mrjax.data._scale import SCALE_METHODS
from mrjax.learners._features import FeatureParams, RandomFourier
from mrjax.learners._linear import _design

INFERENCE = ("nuts", "svi")
INTERCEPT_SCALE = 2.0


@dataclasses.dataclass(frozen=True)
class BayesConfig:
    """Static description of the Bayesian Meta-Router.

    Attributes
    ----------
    n_features, bandwidth : the random Fourier feature map (see ``learners.RandomFourier``).
    preference_scale, bias_scale : prior standard deviations ``s_η``, ``s_Δ`` of the
        functions (standardised label units; ``|φ(x)|² ≈ 1``, so ``s`` is a function's sd).
    gold_noise, preference_noise : fixed noise sds (standardised units), or ``None`` to
        learn them under HalfNormal(1) priors.
    preference_weight : λ, the power on the preference rows' likelihood.
    scale : scale normalisation of the preference labels.
    standardize : feature standardisation, as ``RouterConfig.standardize`` (``True``, ``"common"``, ``False``).
    inference : ``"nuts"`` or ``"svi"``.
    num_warmup, num_samples : NUTS warm-up and kept draws; ``num_samples`` is also the
        number of SVI draws.
    svi_steps, learning_rate : SVI optimisation (Adam; the step size decays
        exponentially from ``learning_rate`` to 1% of it over the steps).
    """

    n_features: int = 128
    bandwidth: float = 2.0
    preference_scale: float = 1.0
    bias_scale: float = 0.5
    gold_noise: float | None = None
    preference_noise: float | None = None
    preference_weight: float = 1.0
    scale: str = "variance"
    standardize: bool | str = True
    inference: str = "nuts"
    num_warmup: int = 500
    num_samples: int = 1000
    svi_steps: int = 3000
    learning_rate: float = 0.01

    def __post_init__(self):
        if self.inference not in INFERENCE:
            raise ValueError(f"inference must be one of {INFERENCE}, got {self.inference!r}")
        if self.scale not in SCALE_METHODS:
            raise ValueError(f"scale must be one of {SCALE_METHODS}, got {self.scale!r}")
        check_standardize(self.standardize)
        for name in ("preference_scale", "bias_scale", "bandwidth", "learning_rate"):
            finite(name, getattr(self, name), 0.0, strict=True)
        for name in ("gold_noise", "preference_noise"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be > 0 or None (learned), got {v}")
        finite("preference_weight", self.preference_weight, 0.0)
        for name in ("num_samples", "svi_steps", "n_features"):
            integer(name, getattr(self, name), 2)
        integer("num_warmup", self.num_warmup, 0)


class BayesFit(NamedTuple):
    """Posterior draws of the Bayesian Meta-Router (a pytree).

    Attributes
    ----------
    standardizer : feature standardisation of the training rows.
    features : FeatureParams of the shared random feature map.
    label_center, label_scale : () the label standardisation (gold scale).
    scale_constant : () ``c`` applied to preference labels.
    coef_preference, coef_bias : (S, 1 + D) draws of ``[a_η, β_η]`` and ``[a_Δ, β_Δ]``.
    gold_noise, preference_noise : (S,) draws (constant when fixed), standardised units.
    """

    standardizer: Standardizer
    features: FeatureParams
    label_center: Array
    label_scale: Array
    scale_constant: Array
    coef_preference: Array
    coef_bias: Array
    gold_noise: Array
    preference_noise: Array


class BayesInfo(NamedTuple):
    """Diagnostics: ``divergences`` (NUTS; 0 for SVI), ``min_ess`` (smallest effective
    sample size over coefficients; NUTS), ``final_loss`` (SVI's last ELBO loss; NaN for NUTS)."""

    divergences: int
    min_ess: float
    final_loss: float


def _prior_sd(config: BayesConfig, p: int) -> Array:
    one = lambda s: jnp.concatenate([jnp.full((1,), INTERCEPT_SCALE), jnp.full((p - 1,), s)])
    return jnp.concatenate([one(config.preference_scale), one(config.bias_scale)])


def _joint_design(H: Array, t: Array) -> Array:
    """Rows ``[h, t·h]``: gold rows see η + Δ, preference rows η."""
    return jnp.concatenate([H, t[:, None] * H], axis=1)


def _gaussian_posterior(G: Array, y: Array, precision: Array, prior_sd: Array) -> tuple[Array, Array]:
    """Mean and Cholesky factor ``L`` (``A = L Lᵀ``) of the posterior precision of θ in
    ``y ~ N(Gθ, diag(1/precision))``, ``θ ~ N(0, diag(prior_sd²))``."""
    A = jnp.matmul(G.T, precision[:, None] * G, precision="highest") + jnp.diag(1.0 / prior_sd**2)
    L = jnp.linalg.cholesky(A)
    mean = jax.scipy.linalg.cho_solve((L, True), jnp.matmul(G.T, precision * y, precision="highest"))
    return mean, L


def _precondition(G, t, y, row_weight, config: BayesConfig):
    """A change of variables ``θ = m + L⁻ᵀ z`` from the Gaussian posterior at plug-in noise
    scales, so that the sampler sees z ≈ N(0, I) (a linear map: constant Jacobian, same model)."""
    gold = t > 0.5
    prior_sd = _prior_sd(config, G.shape[1] // 2)
    sg = 0.5 if config.gold_noise is None else config.gold_noise
    sp = 0.5 if config.preference_noise is None else config.preference_noise
    for _ in range(2):  # plug-in noise scales: residual RMS per source at the posterior mean
        prec = row_weight / jnp.where(gold, sg, sp) ** 2
        mean, L = _gaussian_posterior(G, y, prec, prior_sd)
        r2 = (y - jnp.matmul(G, mean, precision="highest")) ** 2
        rms = lambda m: jnp.sqrt(jnp.sum(row_weight * m * r2) / jnp.maximum(jnp.sum(row_weight * m), 1e-12))
        sg = rms(gold) if config.gold_noise is None else sg
        sp = rms(~gold) if config.preference_noise is None else sp
    prec = row_weight / jnp.where(gold, sg, sp) ** 2
    mean, L = _gaussian_posterior(G, y, prec, prior_sd)
    return mean, L, prior_sd


def _model(G, t, y, row_weight, shift, L, prior_sd, config: BayesConfig):
    p2 = G.shape[1]
    z = numpyro.sample("z", dist.ImproperUniform(dist.constraints.real_vector, (), (p2,)))
    theta = shift + jax.scipy.linalg.solve_triangular(L, z, lower=True, trans="T")
    numpyro.factor("prior", jnp.sum(dist.Normal(0.0, prior_sd).log_prob(theta)))
    sg = (numpyro.sample("gold_noise", dist.HalfNormal(1.0)) if config.gold_noise is None
          else jnp.asarray(config.gold_noise, G.dtype))
    sp = (numpyro.sample("preference_noise", dist.HalfNormal(1.0)) if config.preference_noise is None
          else jnp.asarray(config.preference_noise, G.dtype))
    sd = jnp.where(t > 0.5, sg, sp)
    numpyro.factor("loglik", jnp.sum(row_weight * dist.Normal(jnp.matmul(G, theta, precision="highest"), sd).log_prob(y)))


def _prepare(key: PRNGKey, data: Dataset, config: BayesConfig):
    w = data.weight
    prep = preprocess(data, config.standardize, config.scale)
    std, X, o, c = prep.standardizer, prep.data.features, prep.data.label, prep.scale_constant
    fmap = RandomFourier(config.n_features, config.bandwidth)
    features = fmap.init(key, X.shape[1], fmap.hyper())
    center = jnp.sum(w * o) / jnp.sum(w)
    spread = jnp.sqrt(jnp.sum(w * (o - center) ** 2) / jnp.sum(w))
    spread = jnp.where(spread > 0, spread, 1.0)
    return std, features, fmap, c, center, spread, _design(fmap, features, X), (o - center) / spread


def fit_bayes(key: PRNGKey, data: Dataset, config: BayesConfig = BayesConfig()) -> tuple[BayesFit, BayesInfo]:
    """Posterior draws of the Bayesian Meta-Router (NUTS or SVI; see the module docstring).

    Not itself jittable (it checks the draws on the host), but its stages are compiled: the preparation
    as one program, the inference (initialisation, warmup or steps, draws) as another, reused by later fits
    of the same shapes — run op by op, their hundreds of small operations each compiled on first use and
    cost more than the inference itself.
    Same key, same draws.
    """
    k_feat, k_inf, k_draw = jax.random.split(key, 3)
    std, features, c, center, spread, args = _setup(k_feat, data, config)
    S = int(config.num_samples)
    p = args[0].shape[1] // 2
    if config.inference == "nuts":
        draws, diverging = _nuts(k_inf, args, config)
        info = _nuts_info(draws, diverging)
    else:
        draws, final_loss = _svi(k_inf, k_draw, args, config)
        info = BayesInfo(0, float("nan"), float(final_loss))
    theta = _theta(args[4], args[5], draws["z"])
    noise = lambda name, fixed: (draws[name] if fixed is None else jnp.full((S,), fixed, theta.dtype))
    fit = BayesFit(std, features, center, spread, c, theta[:, :p], theta[:, p:],
                   noise("gold_noise", config.gold_noise), noise("preference_noise", config.preference_noise))
    bad = [k for k in ("coef_preference", "coef_bias") if not bool(jnp.all(jnp.isfinite(getattr(fit, k))))]
    if bad:
        raise FloatingPointError(f"non-finite posterior draws in {bad}; check the data and the prior scales")
    return fit, info


@functools.partial(jax.jit, static_argnames="config")
def _setup(key, data, config):
    """Standardiser, feature map, label scale and the model's arguments ``(G, t, y, row_weight, shift, L,
    prior_sd)`` (the preconditioner included)."""
    std, features, _, c, center, spread, H, y = _prepare(key, data, config)
    t = data.is_gold
    G = _joint_design(H, t)
    row_weight = data.weight * jnp.where(t > 0.5, 1.0, config.preference_weight)
    shift, L, prior_sd = _precondition(G, t, y, row_weight, config)
    return std, features, c, center, spread, (G, t, y, row_weight, shift, L, prior_sd)


@jax.jit
def _theta(shift, L, z):
    """Coefficient draws ``θ = m + L⁻ᵀ z`` from whitened draws ``z (S, 2p)``."""
    return shift[None, :] + jax.vmap(lambda v: jax.scipy.linalg.solve_triangular(L, v, lower=True, trans="T"))(z)


def _start(args):
    """Both samplers start at the preconditioner's mean (whitened coordinates ``z = 0``)."""
    return init_to_value(values={"z": jnp.zeros((args[0].shape[1],), args[0].dtype)})


@functools.partial(jax.jit, static_argnames="config")
def _nuts(k_inf, args, config: BayesConfig):
    """One NUTS chain (numpyro's kernel, its default step-size and diagonal mass adaptation over the warmup) as
    one compiled program: ``num_samples`` draws (constrained) and whether each draw's trajectory diverged."""
    k_init, k_run = jax.random.split(k_inf)
    with jax.numpy_rank_promotion("allow"):  # numpyro's internals broadcast implicitly
        model = initialize_model(k_init, _model, model_args=(*args, config), init_strategy=_start(args))
        init_kernel, sample_kernel = hmc(model.potential_fn, algo="NUTS")
        state = init_kernel(model.param_info, num_warmup=int(config.num_warmup), rng_key=k_run)

        def step(st, _):
            st = sample_kernel(st)
            return st, (st.z, st.diverging)

        # Warmup and draws in one loop (one copy of the kernel to compile); the warmup's states are dropped.
        _, (z, diverging) = jax.lax.scan(step, state, None, length=int(config.num_warmup) + int(config.num_samples))
        z, diverging = jax.tree_util.tree_map(lambda a: a[int(config.num_warmup):], (z, diverging))
        return jax.vmap(model.postprocess_fn)(z), diverging


def _nuts_info(draws, diverging) -> BayesInfo:
    ess = numpyro.diagnostics.effective_sample_size(np.asarray(draws["z"])[None])
    return BayesInfo(int(np.sum(np.asarray(diverging))), float(np.min(ess)), float("nan"))


@functools.partial(jax.jit, static_argnames="config")
def _svi(k_inf, k_draw, args, config: BayesConfig):
    """A full-rank Gaussian guide by Adam, then ``num_samples`` draws from it, and the last step's loss."""
    guide = AutoMultivariateNormal(_model, init_loc_fn=_start(args), init_scale=0.5)
    steps, lr = int(config.svi_steps), float(config.learning_rate)
    # Decay the step size to 1% of its start so the last iterate settles instead of jittering.
    schedule = lambda i: lr * 0.01 ** (i / steps)
    svi = SVI(_model, guide, numpyro.optim.Adam(schedule), Trace_ELBO())
    with jax.numpy_rank_promotion("allow"):  # numpyro's internals broadcast implicitly
        result = svi.run(k_inf, steps, *args, config, progress_bar=False)
        draws = guide.sample_posterior(k_draw, result.params, sample_shape=(int(config.num_samples),))
    return draws, result.losses[-1]


def posterior_predict(config: BayesConfig, fit: BayesFit, X: Array, target: str = "quality") -> Array:
    """Posterior draws ``(S, m)`` of ψ(x) (``target="quality"``), Δ(x) (``"bias"``) or η(x)
    (``"preference"``) at queries ``X (m, d)``, on the gold scale."""
    if target not in ("quality", "bias", "preference"):
        raise ValueError(f"target must be 'quality', 'bias' or 'preference', got {target!r}")
    H = _design(RandomFourier(config.n_features, config.bandwidth), fit.features, standardize(fit.standardizer, X))
    if target == "bias":
        return fit.label_scale * jnp.matmul(fit.coef_bias, H.T, precision="highest")
    coef = fit.coef_preference if target == "preference" else fit.coef_preference + fit.coef_bias
    return fit.label_center + fit.label_scale * jnp.matmul(coef, H.T, precision="highest")
