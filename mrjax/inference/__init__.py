"""Uncertainty: batched bootstrap of the whole pipeline and intervals from draws."""
from mrjax.inference._bootstrap import (
    INTERVAL_KINDS,
    WEIGHT_KINDS,
    bootstrap_predict,
    bootstrap_weights,
    interval,
    route_with_uncertainty,
    simultaneous_band,
)

__all__ = ["INTERVAL_KINDS", "WEIGHT_KINDS", "bootstrap_predict", "bootstrap_weights", "interval", "route_with_uncertainty", "simultaneous_band"]
