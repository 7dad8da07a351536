"""Nuisance models (propensity, outcome regressions) and K-fold cross-fitting."""
from mrjax.learners._crossfit import convergence, crossfit_predict
from mrjax.nuisance._nuisance import PropensityInfo, fit_outcome, fit_propensity

__all__ = ["convergence", "crossfit_predict", "PropensityInfo", "fit_outcome", "fit_propensity"]
