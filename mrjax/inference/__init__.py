"""Uncertainty: batched bootstrap of the whole pipeline, intervals from draws, and the
value of a fitted policy under draws (bootstrap or posterior)."""
from mrjax.inference._bootstrap import (
    INTERVAL_KINDS,
    WEIGHT_KINDS,
    ReplicateFits,
    bootstrap_fits,
    bootstrap_predict,
    bootstrap_weights,
    interval,
    replicate_predict,
    route_with_uncertainty,
    simultaneous_band,
)
from mrjax.inference._value import (
    ValueEstimate, efficiency_gain, efficiency_gain_draws, gold_corrected_value, policy_value, policy_value_draws,
)

__all__ = [
    "INTERVAL_KINDS", "WEIGHT_KINDS", "ReplicateFits", "bootstrap_fits", "bootstrap_predict", "replicate_predict", "bootstrap_weights", "interval", "route_with_uncertainty",
    "simultaneous_band", "ValueEstimate", "gold_corrected_value", "efficiency_gain", "efficiency_gain_draws", "policy_value", "policy_value_draws",
]
