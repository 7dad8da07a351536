"""The Bayesian random-feature Meta-Router (numpyro) against its closed-form posterior."""
import numpy as np
import pytest
import jax
import jax.numpy as jnp
from numpyro.diagnostics import effective_sample_size

from mrjax.bayes import BayesConfig, fit_bayes, posterior_predict
from mrjax.bayes._model import INTERCEPT_SCALE
from mrjax.data import paper_like
from mrjax.inference import interval, route_with_uncertainty

SIM = paper_like(jax.random.key(0), n_gold=40, n_preference=160, n_test=5, n_features=6)
FIXED = dict(n_features=12, gold_noise=0.6, preference_noise=0.8, preference_weight=0.5, bias_scale=0.7)


def _closed_form(fit, config, X):
    """The linear-Gaussian posterior of ψ(x) and Δ(x), in float64 NumPy from the model's equations."""
    d = SIM.data
    std = lambda A: (np.asarray(A, np.float64) - np.asarray(fit.standardizer.mean)) / np.asarray(fit.standardizer.scale)
    freq, phase = np.asarray(fit.features.frequencies, np.float64), np.asarray(fit.features.phase, np.float64)
    design = lambda A: np.column_stack([np.ones(len(A)), np.sqrt(2.0 / config.n_features) * np.cos(std(A) @ freq + phase)])
    H, Hx = design(d.features), design(X)
    t, w = np.asarray(d.is_gold, np.float64), np.asarray(d.weight, np.float64)
    c, m0, s0 = float(fit.scale_constant), float(fit.label_center), float(fit.label_scale)
    y = (np.where(t > 0.5, np.asarray(d.label), c * np.asarray(d.label)) - m0) / s0
    G = np.hstack([H, t[:, None] * H])
    prec = w * np.where(t > 0.5, 1.0, config.preference_weight) / np.where(t > 0.5, config.gold_noise, config.preference_noise) ** 2
    p = H.shape[1]
    prior = np.concatenate([[INTERCEPT_SCALE], np.full(p - 1, config.preference_scale),
                            [INTERCEPT_SCALE], np.full(p - 1, config.bias_scale)])
    A = G.T @ (prec[:, None] * G) + np.diag(1 / prior**2)
    cov = np.linalg.inv(A)
    mean = cov @ (G.T @ (prec * y))
    out = {}
    for name, L in (("quality", np.hstack([Hx, Hx])), ("bias", np.hstack([np.zeros_like(Hx), Hx]))):
        mu = L @ mean * s0 + (m0 if name == "quality" else 0.0)
        sd = np.sqrt(np.einsum("ij,jk,ik->i", L, cov, L)) * s0
        out[name] = (mu, sd)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("inference", ["nuts", "svi"])
def test_posterior_matches_closed_form_linear_gaussian(inference):
    config = BayesConfig(**FIXED, inference=inference, num_warmup=300, num_samples=8000, svi_steps=4000)
    fit, info = fit_bayes(jax.random.key(1), SIM.data, config)
    exact = _closed_form(fit, config, np.asarray(SIM.test_features))
    for target in ("quality", "bias"):
        draws = np.asarray(posterior_predict(config, fit, SIM.test_features, target), np.float64)
        mu, sd = exact[target]
        if inference == "nuts":
            assert info.divergences == 0
            # Monte-Carlo error of a chain: se(mean) = sd/√ESS(x) and se(sd)/sd ≈ 1/√(2·ESS((x − μ)²))
            # (NUTS draws are antithetic for the mean, ESS > S, but not for the spread); allow 4 se.
            ess, ess_sq = effective_sample_size(draws[None]), effective_sample_size(((draws - mu) ** 2)[None])
            assert ess_sq.min() > 1000
            np.testing.assert_array_less(np.abs(draws.mean(0) - mu), 4 * sd / np.sqrt(ess))
            np.testing.assert_array_less(np.abs(draws.std(0) / sd - 1), 4 / np.sqrt(2 * ess_sq))
        else:
            # SVI is optimisation, not sampling: the full-rank Gaussian guide contains the exact
            # posterior, and Adam's stochastic steps leave the fit jittering near it. "Matches"
            # here means means within 0.1 posterior sd and sds within 10% — each far above the
            # 4000 draws' own Monte-Carlo error (0.016 sd, 1.1%).
            np.testing.assert_array_less(np.abs(draws.mean(0) - mu), 0.1 * sd)
            np.testing.assert_array_less(np.abs(draws.std(0) / sd - 1), 0.10)


@pytest.mark.slow
def test_same_key_same_draws_and_draws_feed_the_interval_tools():
    config = BayesConfig(n_features=8, num_warmup=100, num_samples=200)
    a, _ = fit_bayes(jax.random.key(3), SIM.data, config)
    b, _ = fit_bayes(jax.random.key(3), SIM.data, config)
    np.testing.assert_array_equal(a.coef_bias, b.coef_bias)
    np.testing.assert_array_equal(a.gold_noise, b.gold_noise)
    draws = posterior_predict(config, a, SIM.test_features)
    assert draws.shape == (200, 5)
    lo, hi = interval(draws, jnp.mean(draws, 0), 0.9)
    assert np.all(np.asarray(lo) < np.asarray(hi))
    assert route_with_uncertainty(draws, jnp.asarray([0.0, 0.5]), alpha=0.9).shape == (2, 5)
    # Learned noise scales: positive, and each source's posterior near its simulated sd
    # (0.5 on the gold scale, standardised here) — not checked tightly on 40 gold rows.
    assert float(jnp.min(a.gold_noise)) > 0 and float(jnp.min(a.preference_noise)) > 0


def test_config_validation():
    with pytest.raises(ValueError, match="inference must be one of"):
        BayesConfig(inference="gibbs")
    with pytest.raises(ValueError, match="bias_scale must be > 0"):
        BayesConfig(bias_scale=0.0)
    with pytest.raises(ValueError, match="gold_noise must be > 0 or None"):
        BayesConfig(gold_noise=-1.0)
    with pytest.raises(ValueError, match="target must be"):
        posterior_predict(BayesConfig(), None, SIM.test_features, "both")
