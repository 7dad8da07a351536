"""CATE meta-learners (R, DR, X, T, S) for the preference bias Δ(x)."""
from mrjax.cate._cate import (
    CATE_KINDS,
    CateConfig,
    CateFit,
    CateHyper,
    CateInfo,
    authors_cate,
    default_cate_hyper,
    default_effect_learner,
    fit_cate,
    fit_keys,
    predict_bias,
)

__all__ = [
    "CATE_KINDS", "CateConfig", "CateFit", "CateHyper", "CateInfo", "authors_cate",
    "default_cate_hyper", "default_effect_learner", "fit_cate", "fit_keys", "predict_bias",
]
