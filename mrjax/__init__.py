"""mrjax: train and evaluate LLM routers from gold-standard and preference labels in JAX."""
from mrjax import cate, data, learners, nuisance, router
from mrjax.cate import CateConfig, authors_cate, fit_cate, predict_bias
from mrjax.data import Dataset, from_arrays, from_dataframe, from_sources, normalize_scale
from mrjax.learners import MLP, Logistic, RandomFeatureRidge, RandomFourier, Ridge
from mrjax.router import RouterConfig, default_hyper, fit_router, predict_quality, route

__version__ = "0.1.0"

__all__ = [
    "cate", "data", "learners", "nuisance", "router",
    "CateConfig", "authors_cate", "fit_cate", "predict_bias",
    "Dataset", "from_arrays", "from_dataframe", "from_sources", "normalize_scale",
    "MLP", "Logistic", "RandomFeatureRidge", "RandomFourier", "Ridge",
    "RouterConfig", "default_hyper", "fit_router", "predict_quality", "route",
]
