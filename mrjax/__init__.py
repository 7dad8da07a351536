"""mrjax: train and evaluate LLM routers from gold-standard and preference labels in JAX."""
from mrjax import cate, data, learners, nuisance, router
from mrjax.cate import DRLearner, RLearner, SLearner, TLearner, XLearner, authors_cate, fit_cate, predict_bias
from mrjax.data import Dataset, from_arrays, from_dataframe, from_sources, normalize_scale
from mrjax.learners import (
    MLP, Auto, GradientBoostedTrees, Logistic, RandomFeatureRidge, RandomForest, RandomFourier, RelevanceRidge, Ridge,
)
from mrjax.router import (
    CrossValidatedWeight, Golden, Meta, MeanShift, Pooled, Preference, AllGolden, RouterConfig, default_hyper, fit_router,
    predict_quality, route,
)
from mrjax.api import MetaRouter  # noqa: E402  (the facade sits on top of every layer above)
from mrjax.multi import MultiRouter  # noqa: E402  (one MetaRouter per model, on top of the facade)

__version__ = "0.1.0"

__all__ = [
    "cate", "data", "learners", "nuisance", "router",
    "DRLearner", "RLearner", "SLearner", "TLearner", "XLearner", "authors_cate", "fit_cate", "predict_bias",
    "Dataset", "from_arrays", "from_dataframe", "from_sources", "normalize_scale",
    "MLP", "Auto", "GradientBoostedTrees", "Logistic", "RandomFeatureRidge", "RandomForest", "RandomFourier",
    "RelevanceRidge", "Ridge",
    "AllGolden", "CrossValidatedWeight", "Golden", "Meta", "MeanShift", "Pooled", "Preference",
    "RouterConfig", "default_hyper", "fit_router", "predict_quality", "route",
    "MetaRouter", "MultiRouter",
]
