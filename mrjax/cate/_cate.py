"""CATE meta-learners for the preference bias ``Δ(x) = E[o(1) − o(0) | x]``.

The label source is the treatment (``t = 1`` gold, ``t = 0`` preference).

* R-learner (Nie & Wager, 2021): regress ``(o − m̂)/(t − p̂)`` on ``x`` with weights ``(t − p̂)²``.
* DR-learner (Kennedy, 2023): regress ``φ = (t − p̂)/(p̂(1 − p̂)) (o − μ̂_t) + μ̂_1 − μ̂_0`` on ``x``.
* T-learner: ``μ̂_1 − μ̂_0``. S-learner: one model of ``o`` on ``(x, t)``, differenced.
* X-learner (Künzel et al., 2019), built for very unequal arms: impute
  ``D_1 = r − μ̂_0(x)`` on gold rows and ``D_0 = μ̂_1(x) − y`` on preference rows, fit
  ``τ_1`` and ``τ_0``, combine ``τ = p̂ τ_0 + (1 − p̂) τ_1``.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax._typing import Array, PRNGKey
from mrjax.data._dataset import Dataset
from mrjax.data._folds import Folds, make_folds
from mrjax.learners._base import Learner, used_hyper
from mrjax.learners._linear import Logistic, RandomFeatureRidge
from mrjax.nuisance._nuisance import PropensityInfo, fit_outcome, fit_propensity

CATE_KINDS = ("r", "dr", "x", "t", "s")


def default_effect_learner(kind: str, n_features: int = 256) -> Learner:
    """The default final-stage regression for a CATE kind: random-feature ridge with the
    penalty selected by exact leave-one-out error (DR), by its one-standard-error rule
    (X), or fixed at 1 (R); see ``CateConfig``."""
    if kind == "r":
        return RandomFeatureRidge(n_features=n_features, penalty=1.0)
    return RandomFeatureRidge(n_features=n_features, penalty="loo_1se" if kind == "x" else "loo")


@dataclasses.dataclass(frozen=True)
class CateConfig:
    """Static description of a CATE learner for the bias.

    Attributes
    ----------
    kind : one of ``"r"``, ``"dr"``, ``"x"``, ``"t"``, ``"s"``.
    propensity_learner : classifier for ``P(gold | x)``; ``None`` uses a known
        propensity (the gold share, or the ``known_propensity`` passed to ``fit_cate``).
    outcome_learner : regressor for ``m̂``, ``μ̂_1``, ``μ̂_0`` (and the S-learner's model).
    effect_learner : the final regression of the pseudo-outcomes on ``x``. ``None``
        (default) picks random-feature ridge with the penalty selected by exact
        leave-one-out error, except for the R-learner, whose final stage gets a fixed
        penalty of 1: on the paper-like simulator (1k gold / 39k preference) GCV under
        the R-loss weights ``(t − p̂)²`` overfits (ψ̂ RMSE 0.468 vs 0.389), while DR needs
        a selected penalty (0.43 vs 0.92 at 100 gold). Leave-one-out rather than GCV: the
        doubly robust pseudo-outcomes of the few gold rows are ~1/p̂ times noisier than
        the rest, and GCV, which gives every row the average leverage, credits fits that
        chase them — at 100 gold rows it picked such a fit in about one bootstrap
        replicate in six (ψ̂ off by up to 37), and over 200 default-study runs
        leave-one-out lowered the DR ψ̂ RMSE from 0.589 to 0.495 (± 0.032). The X-learner's
        two final stages are plain regressions on one source each and take the largest
        penalty within one standard error of the best leave-one-out error: a bias the
        gold rows cannot resolve (RouteLLM-MMLU's per-subject judge bias, 100 gold rows)
        is then estimated as nearly constant instead of as noise that reorders queries.
        The R and DR final stages keep their rules: under the R-loss weights and DR
        pseudo-outcomes the standard errors are so wide that the rule flattens real
        structure (at 1k gold on the simulator it lost 3.4 and 2.8 raw area).
    n_folds : cross-fitting folds; 0 fits nuisances in-sample (the authors' code).
    """

    kind: str = "r"
    propensity_learner: Learner | None = Logistic()
    outcome_learner: Learner = RandomFeatureRidge()
    effect_learner: Learner | None = None
    n_folds: int = 5

    def __post_init__(self):
        if self.effect_learner is None:
            object.__setattr__(self, "effect_learner", default_effect_learner(self.kind))
        if self.kind not in CATE_KINDS:
            raise ValueError(f"CATE kind must be one of {CATE_KINDS}, got {self.kind!r}")
        if self.n_folds == 1 or self.n_folds < 0:
            raise ValueError(f"n_folds must be 0 (in-sample) or at least 2, got {self.n_folds}")
        for name in ("outcome_learner", "effect_learner"):
            if getattr(self, name).task != "regression":
                raise ValueError(f"{name} must be a regressor, got task {getattr(self, name).task!r}")
        if self.propensity_learner is not None and self.propensity_learner.task != "classification":
            raise ValueError("propensity_learner must be a classifier (task 'classification')")


class CateHyper(NamedTuple):
    """Sweepable numbers of a CATE fit (all arrays).

    Attributes
    ----------
    propensity_clip : (2,) ``[low, high]`` applied to p̂ (clipped rows are counted).
    bias_clip : () bound ``b``: Δ̂ is clipped to ``[−b, b]`` (``inf``: no clipping).
    pseudo_mask : () threshold ``c``; rows with ``|t − p̂| ≤ c`` (R) or
        ``p̂(1 − p̂) ≤ c`` (DR) get zero weight in the final regression (authors: 0.05).
    propensity : dict of the propensity learner's hyper-parameters.
    outcome, effect : dict of the outcome (effect) learner's hyper-parameters, shared by
        every outcome (effect) model; or a tuple of dicts, one per model in fit order
        (outcome: R ``(m,)``, DR/T/X ``(μ_1, μ_0)``, S ``(model,)``; effect: X ``(τ_1, τ_0)``,
        else one). A cross-fitted model's penalty may be (K,), one per fold.
        ``CateInfo.outcome_hyper`` / ``effect_hyper`` have this form.
    """

    propensity_clip: Array
    bias_clip: Array
    pseudo_mask: Array
    propensity: dict
    outcome: dict
    effect: dict


def default_cate_hyper(config: CateConfig) -> CateHyper:
    """Defaults: propensity clipped to [0.001, 0.999], no bias clip, no pseudo-outcome mask."""
    return CateHyper(
        propensity_clip=jnp.asarray([1e-3, 1 - 1e-3], jnp.float32),
        bias_clip=jnp.asarray(jnp.inf, jnp.float32),
        pseudo_mask=jnp.asarray(0.0, jnp.float32),
        propensity={} if config.propensity_learner is None else config.propensity_learner.hyper(),
        outcome=config.outcome_learner.hyper(),
        effect=config.effect_learner.hyper(),
    )


def authors_cate(kind: str, **learners) -> tuple[CateConfig, CateHyper]:
    """The reproduction switch: the authors' illustrative code (``yichistat/Meta-router``).

    In-sample nuisances (no cross-fitting), propensity clipped to [0.1, 0.9] for the
    R-learner and [0.05, 0.95] for the DR-learner, pseudo-outcome mask 0.05 and Δ̂
    clipped to [−1.2, 1.2]. Not the default: in-sample nuisances overfit.
    """
    if kind not in ("r", "dr"):
        raise ValueError(f"the authors' code has only the 'r' and 'dr' learners, got {kind!r}")
    config = CateConfig(kind=kind, n_folds=0, **learners)
    clip = [0.1, 0.9] if kind == "r" else [0.05, 0.95]
    return config, default_cate_hyper(config)._replace(
        propensity_clip=jnp.asarray(clip, jnp.float32),
        bias_clip=jnp.asarray(1.2, jnp.float32),
        pseudo_mask=jnp.asarray(0.05, jnp.float32),
    )


class CateFit(NamedTuple):
    """A fitted bias model (a pytree).

    Attributes
    ----------
    params : tuple of learner params; R/DR: ``(effect,)``; T: ``(μ_1, μ_0)``;
        S: ``(model on (x, t),)``; X: ``(τ_1, τ_0, propensity params or () array)``.
    bias_clip : () array, the bound applied to predictions.
    """

    params: tuple
    bias_clip: Array


class CateInfo(NamedTuple):
    """Diagnostics of a CATE fit.

    Attributes
    ----------
    propensity : PropensityInfo (zeros where the learner uses no propensity).
    n_clipped_bias : () int array, training rows whose Δ̂ was clipped.
    n_masked : () int array, rows given zero weight by ``pseudo_mask``.
    outcome_hyper, effect_hyper : tuples of dicts, the hyper-parameters each outcome
        (effect) model used, in fit order (GCV choices; per-fold arrays for cross-fitted
        models). Passed back as ``CateHyper.outcome`` / ``effect`` with fixed-penalty
        learners they refit with the tuning held fixed (see ``router.fixed_tuning``).
    """

    propensity: PropensityInfo
    n_clipped_bias: Array
    n_masked: Array
    outcome_hyper: tuple = ()
    effect_hyper: tuple = ()


def fit_keys(key: PRNGKey) -> tuple[PRNGKey, PRNGKey]:
    """``(fold key, learner key)`` of a fit.

    Every learner of one fit — propensity, outcome, effect, and the router's quality
    learner — is fitted with the same learner key, so random-feature learners share one
    random basis: a fit computes its design matrix once (under ``jit``, equal computations
    are merged), Gram matrices of equal weights once, and methods fitted with the same key
    differ only in what they do, not in their basis (common random numbers).
    """
    k_fold, k_learn = jax.random.split(key)
    return k_fold, k_learn


def _with_treatment(X: Array, t: Array) -> Array:
    return jnp.concatenate([X, t[:, None]], axis=1)


def _effect_fit(learner: Learner, key, X, pseudo, weight, hyper):
    # Pseudo-outcomes are finite wherever weight > 0; zero them elsewhere so 0 * inf cannot make NaN.
    pseudo = jnp.where(weight > 0, pseudo, 0.0)
    return learner.fit(key, X, pseudo, weight, hyper)


def _model_hyper(h, i: int) -> dict:
    """Model ``i``'s hyper-parameters: a dict shared by a stage's models, or one per model."""
    return h[i] if isinstance(h, tuple) else h


def fit_cate(
    key: PRNGKey,
    data: Dataset,
    config: CateConfig,
    hyper: CateHyper | None = None,
    known_propensity: Array | None = None,
    folds: Folds | None = None,
) -> tuple[CateFit, CateInfo]:
    """Fit the bias ``Δ(x)`` with the meta-learner ``config.kind``.

    Parameters
    ----------
    key : PRNGKey
    data : Dataset (features should be standardised for RFF learners)
    config : CateConfig (static)
    hyper : CateHyper, optional
    known_propensity : () or (n,) array, used when ``config.propensity_learner`` is None.
    folds : Folds, optional; drawn from ``key`` (stratified by source) when omitted.

    Returns
    -------
    fit : CateFit
    info : CateInfo
    """
    hyper = default_cate_hyper(config) if hyper is None else hyper
    k_fold, k_learn = fit_keys(key)
    if folds is None and config.n_folds >= 2:
        folds = make_folds(k_fold, data.is_gold, config.n_folds)
    if config.n_folds == 0:
        folds = None
    X, t, o, w = data.features, data.is_gold, data.label, data.weight
    zero = jnp.zeros((), jnp.int32)
    p_info = PropensityInfo(zero, jnp.zeros(()), jnp.zeros(()), zero, jnp.zeros(()))
    n_masked = zero
    out, eff = config.outcome_learner, config.effect_learner

    if config.kind in ("r", "dr", "x"):
        # The X-learner's propensity only mixes τ̂₀ and τ̂₁ (a full-data fit below): its
        # diagnostics come from that same fit in-sample, not from K extra cross-fitted fits.
        p_folds = None if config.kind == "x" else folds
        p, p_info = fit_propensity(
            k_learn, data, config.propensity_learner, p_folds, hyper.propensity_clip, hyper.propensity, known_propensity
        )

    h_out = lambda i: _model_hyper(hyper.outcome, i)
    h_eff = lambda i: _model_hyper(hyper.effect, i)
    if config.kind == "r":
        m, m_used = fit_outcome(k_learn, data, out, folds, "all", h_out(0))
        resid_t = t - p
        keep = jnp.abs(resid_t) > hyper.pseudo_mask
        weight = w * resid_t**2 * keep
        n_masked = jnp.sum(~keep & (w > 0))
        params = (_effect_fit(eff, k_learn, X, (o - m) / resid_t, weight, h_eff(0)),)
        outcome_used = (m_used,)
    elif config.kind == "dr":
        mu1, mu1_used = fit_outcome(k_learn, data, out, folds, "gold", h_out(0))
        mu0, mu0_used = fit_outcome(k_learn, data, out, folds, "preference", h_out(1))
        mu_t = jnp.where(t > 0.5, mu1, mu0)
        phi = (t - p) / (p * (1 - p)) * (o - mu_t) + mu1 - mu0
        keep = p * (1 - p) > hyper.pseudo_mask
        n_masked = jnp.sum(~keep & (w > 0))
        params = (_effect_fit(eff, k_learn, X, phi, w * keep, h_eff(0)),)
        outcome_used = (mu1_used, mu0_used)
    elif config.kind == "t":
        params = (
            out.fit(k_learn, X, o, w * t, h_out(0)),
            out.fit(k_learn, X, o, w * (1 - t), h_out(1)),
        )
        outcome_used = tuple(used_hyper(h_out(i), q) for i, q in enumerate(params))
    elif config.kind == "s":
        params = (out.fit(k_learn, _with_treatment(X, t), o, w, h_out(0)),)
        outcome_used = (used_hyper(h_out(0), params[0]),)
    else:  # x
        # μ̂_0 never sees gold rows and μ̂_1 never sees preference rows, so the imputed
        # effects are out-of-sample without cross-fitting.
        mu1_params = out.fit(k_learn, X, o, w * t, h_out(0))
        mu0_params = out.fit(k_learn, X, o, w * (1 - t), h_out(1))
        d1 = o - out.predict(mu0_params, X)
        d0 = out.predict(mu1_params, X) - o
        tau1 = eff.fit(k_learn, X, d1, w * t, h_eff(0))
        tau0 = eff.fit(k_learn, X, d0, w * (1 - t), h_eff(1))
        if config.propensity_learner is None:
            g = jnp.mean(p)  # a known propensity enters as a constant mixing weight
        else:
            g = config.propensity_learner.fit(k_learn, X, t, w, hyper.propensity)
        params = (tau1, tau0, g)
        outcome_used = (used_hyper(h_out(0), mu1_params), used_hyper(h_out(1), mu0_params))

    n_effect = {"r": 1, "dr": 1, "x": 2}.get(config.kind, 0)
    effect_used = tuple(used_hyper(h_eff(i), params[i]) for i in range(n_effect))
    fit = CateFit(params, hyper.bias_clip)
    raw = _raw_bias(config, fit, X)
    info = CateInfo(p_info, jnp.sum(jnp.abs(raw) > hyper.bias_clip), n_masked, outcome_used, effect_used)
    return fit, info


def _raw_bias(config: CateConfig, fit: CateFit, X: Array) -> Array:
    out, eff = config.outcome_learner, config.effect_learner
    if config.kind in ("r", "dr"):
        return eff.predict(fit.params[0], X)
    if config.kind == "t":
        return out.predict(fit.params[0], X) - out.predict(fit.params[1], X)
    if config.kind == "s":
        n = X.shape[0]
        ones, zeros = jnp.ones((n,), X.dtype), jnp.zeros((n,), X.dtype)
        return out.predict(fit.params[0], _with_treatment(X, ones)) - out.predict(fit.params[0], _with_treatment(X, zeros))
    tau1, tau0, g = fit.params
    if config.propensity_learner is None:
        gx = jnp.broadcast_to(g, (X.shape[0],))
    else:
        gx = config.propensity_learner.predict(g, X)
    return gx * eff.predict(tau0, X) + (1 - gx) * eff.predict(tau1, X)


def predict_bias(config: CateConfig, fit: CateFit, X: Array) -> Array:
    """Δ̂(x) at new queries ``X (n, d)``, clipped to ``[−bias_clip, bias_clip]``."""
    raw = _raw_bias(config, fit, X)
    return jnp.clip(raw, -fit.bias_clip, fit.bias_clip)
