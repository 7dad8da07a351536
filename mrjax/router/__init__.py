"""The Meta-Router, its baselines and λ by cross-validation as values; the routing rule and the
trade-off engine (two models, and K models); the paper's evaluation."""
from mrjax.router._baselines import AllGolden, Golden, MeanShift, Pooled, Preference
from mrjax.router._cv import CV_CRITERIA, CV_GRID, CrossValidatedWeight
from mrjax.router._fit import (
    RouterConfig, RouterFit, RouterInfo, default_hyper, fit_router, fixed_tuning, predict_quality, predict_router_bias,
)
from mrjax.router._meta import Meta
from mrjax.router._multi import (
    MultiBreakpoints, MultiCalibration, MultiCurve, MultiEvaluation, calibrate_multi_budget, evaluate_multi_routing,
    multi_breakpoints, multi_curve, route_multi, single_model_hull,
)
from mrjax.router._metrics import (
    CPT_LEVELS, FULL_GRID, USAGE_GRID, GainSummary, RoutingEvaluation, RunCurves, efficiency_curve, evaluate_routing,
    area_resamples, random_curve, routing_area, run_areas, run_curves, summarize_gain,
)
from mrjax.router._presets import BASELINES, PRESETS, preset
from mrjax.router._protocol import RouterHyper, RouterMethod, Targets
from mrjax.router._rule import route
from mrjax.router._tradeoff import (
    Breakpoints, Calibration, TradeoffCurve, breakpoints, calibrate_budget, calibrate_share, kth_largest, routed_count,
    routed_sum, tradeoff_curve,
)

__all__ = [
    "AllGolden", "BASELINES", "CPT_LEVELS", "FULL_GRID", "RoutingEvaluation", "evaluate_routing", "Breakpoints", "CV_CRITERIA", "CV_GRID", "Calibration", "CrossValidatedWeight",
    "GainSummary", "Golden", "Meta", "MeanShift", "PRESETS", "Pooled", "Preference", "RouterConfig", "RouterFit",
    "RouterHyper", "RouterInfo", "RouterMethod", "RunCurves", "Targets", "TradeoffCurve", "USAGE_GRID", "breakpoints",
    "area_resamples", "calibrate_budget", "calibrate_share", "default_hyper", "efficiency_curve", "fit_router", "fixed_tuning",
    "kth_largest", "predict_quality", "predict_router_bias", "preset", "random_curve", "route", "routed_count",
    "routed_sum", "routing_area", "run_areas", "run_curves", "summarize_gain", "tradeoff_curve",
    "MultiBreakpoints", "MultiCalibration", "MultiCurve", "MultiEvaluation", "calibrate_multi_budget",
    "evaluate_multi_routing", "multi_breakpoints", "multi_curve", "route_multi", "single_model_hull",
]
