"""CATE meta-learners for the preference bias Δ(x), as values: ``RLearner()``, ``DRLearner()``, …"""
from mrjax.cate._base import (
    CateFit, CateHyper, CateInfo, CateLearner, Stages, fit_cate, fit_keys, predict_bias, with_learners,
)
from mrjax.cate._dr import DRLearner, dr_pseudo_outcome
from mrjax.cate._kinds import CATE_LEARNERS, authors_cate
from mrjax.cate._r import RLearner, r_pseudo_outcome
from mrjax.cate._s import SLearner
from mrjax.cate._t import TLearner
from mrjax.cate._x import XLearner

__all__ = [
    "CATE_LEARNERS", "CateFit", "CateHyper", "CateInfo", "CateLearner", "DRLearner", "RLearner", "SLearner",
    "Stages", "TLearner", "XLearner", "authors_cate", "dr_pseudo_outcome", "fit_cate", "fit_keys", "predict_bias",
    "r_pseudo_outcome", "with_learners",
]
