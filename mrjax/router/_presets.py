"""Router methods by name: the one table the facade, the study engine and the command line read.

``meta_<kind>`` for every CATE learner in ``cate.CATE_LEARNERS`` (``meta`` is ``meta_r``), the
baselines, and for every method that uses λ a ``<name>_cv`` (squared-error CV of λ) and a
``<name>_cv_routing`` (routing-area CV) variant. A new baseline is one class and one line here.
"""
from __future__ import annotations

from mrjax.cate._kinds import CATE_LEARNERS
from mrjax.router._baselines import AllGolden, Golden, MeanShift, Pooled, Preference
from mrjax.router._cv import CrossValidatedWeight
from mrjax.router._meta import Meta

BASELINES = {"golden": Golden(), "preference": Preference(), "pooled": Pooled(), "mean_shift": MeanShift(),
             "all_golden": AllGolden()}
CV_SUFFIXES = {"cv": "squared_error", "cv_routing": "routing"}  # name suffix → CrossValidatedWeight.criterion

PRESETS = {"meta": Meta(), **{f"meta_{kind}": Meta(cls()) for kind, cls in CATE_LEARNERS.items()}, **BASELINES}
PRESETS.update({
    f"{name}_{suffix}": CrossValidatedWeight(method, criterion=criterion)
    for name, method in list(PRESETS.items()) if method.uses_preference_weight
    for suffix, criterion in CV_SUFFIXES.items()
})


def preset(name: str):
    """The router method called ``name`` (see ``PRESETS``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name]
