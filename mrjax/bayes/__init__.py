"""Bayesian random-feature Meta-Router (numpyro): posterior draws of Δ(x) and ψ(x)."""
from mrjax.bayes._model import INFERENCE, BayesConfig, BayesFit, BayesInfo, fit_bayes, posterior_predict

__all__ = ["INFERENCE", "BayesConfig", "BayesFit", "BayesInfo", "fit_bayes", "posterior_predict"]
