"""Data: the pooled Dataset, scale normalisation, folds and simulators with known truth."""
from mrjax.data._dataset import (
    Dataset,
    Standardizer,
    check_weight,
    fit_standardizer,
    from_arrays,
    from_dataframe,
    from_sources,
    standardize,
)
from mrjax.data._folds import Folds, make_folds
from mrjax.data._preprocess import Preprocessed, preprocess
from mrjax.data._llmrouter import LLMRouterPool, load_llmrouter
from mrjax.data._routellm import BENCHMARKS, RouteLLMPool, load_routellm
from mrjax.data._scale import SCALE_METHODS, ScaleInfo, normalize_scale, scale_constant, scale_degenerate
from mrjax.data._simulate import (
    Simulation,
    SimulationConfig,
    Truth,
    heteroscedastic,
    paper_like,
    selection_on_features,
    simulate,
)

__all__ = [
    "Dataset", "Standardizer", "check_weight", "fit_standardizer", "from_arrays", "from_dataframe",
    "from_sources", "standardize", "Folds", "make_folds", "Preprocessed", "preprocess", "BENCHMARKS", "RouteLLMPool", "load_routellm",
    "LLMRouterPool", "load_llmrouter", "SCALE_METHODS", "ScaleInfo",
    "normalize_scale", "scale_constant", "scale_degenerate", "Simulation", "SimulationConfig", "Truth",
    "heteroscedastic", "paper_like", "selection_on_features", "simulate",
]
