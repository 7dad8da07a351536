"""Base learners with one interface (``hyper``, ``fit``, ``predict``), all taking sample weights."""
from mrjax._hyper import structure
from mrjax.learners._auto import AUTO_CANDIDATES, CLASSIFIERS, REGRESSORS, Auto, AutoParams, named
from mrjax.learners._base import Learner
from mrjax.learners._features import FeatureParams, Identity, RandomFourier
from mrjax.learners._linear import LinearParams, Logistic, RandomFeatureRidge, Ridge
from mrjax.learners._mlp import MLP, MLPParams
from mrjax.learners._relevance import FeatureRelevance, RelevanceParams, RelevanceRidge
from mrjax.learners._trees import GradientBoostedTrees, RandomForest, TreeParams

__all__ = [
    "Learner", "structure", "FeatureParams", "Identity", "RandomFourier", "LinearParams", "Logistic",
    "RandomFeatureRidge", "Ridge", "MLP", "MLPParams", "GradientBoostedTrees", "RandomForest", "TreeParams",
    "RelevanceRidge", "RelevanceParams", "FeatureRelevance", "Auto", "AutoParams", "named", "REGRESSORS", "CLASSIFIERS",
    "AUTO_CANDIDATES",
]
