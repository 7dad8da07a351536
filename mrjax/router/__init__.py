"""The Meta-Router fit, baselines, and the routing rule."""
from mrjax.router._fit import (
    CV_CRITERIA,
    CV_GRID,
    METHODS,
    RouterConfig,
    RouterFit,
    RouterHyper,
    RouterInfo,
    default_hyper,
    fit_router,
    fixed_tuning,
    predict_quality,
    predict_router_bias,
)
from mrjax.router._metrics import (
    USAGE_GRID, GainSummary, RunCurves, efficiency_curve, random_curve, routing_area, run_curves, summarize_gain,
)
from mrjax.router._rule import route
from mrjax.router._tradeoff import (
    Breakpoints, Calibration, TradeoffCurve, breakpoints, calibrate_budget, calibrate_share, kth_largest, routed_count, routed_sum,
    tradeoff_curve,
)

__all__ = [
    "CV_GRID", "METHODS", "RouterConfig", "RouterFit", "RouterHyper", "RouterInfo", "default_hyper",
    "fit_router", "fixed_tuning", "predict_quality", "predict_router_bias", "route", "routing_area", "CV_CRITERIA",
    "Breakpoints", "Calibration", "TradeoffCurve", "breakpoints", "calibrate_budget", "calibrate_share",
    "kth_largest", "routed_count", "routed_sum", "tradeoff_curve",
    "USAGE_GRID", "GainSummary", "RunCurves", "efficiency_curve", "random_curve", "run_curves", "summarize_gain",
]
