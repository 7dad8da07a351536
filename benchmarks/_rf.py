"""The authors' random-forest Meta-Router pipeline (``yichistat/Meta-router``), for side-by-side runs.

RF with 100 trees, depth 20, ``max_features="sqrt"``; nuisances fitted in-sample; the
propensity is an RF regressor clipped to [0.1, 0.9] (R) or [0.05, 0.95] (DR); the R
pseudo-outcome keeps rows with ``|t − p̂| > 0.05``, the DR one rows with ``p̂(1 − p̂) > 0.05``;
Δ̂ is clipped to [−1.2, 1.2]; the DR outcome model is one RF on ``(x, t)``. Preference labels
are variance-matched to the gold scale first, as in mrjax's default.
"""
from __future__ import annotations

import functools

import numpy as np


@functools.cache
def _in_order(cls, method):
    """``cls`` whose ``method`` (``predict``, ``predict_proba``) sums the trees in order. With threads,
    scikit-learn adds each tree's prediction as its thread finishes, so the sum rounds by thread timing, and a
    propensity on a clip or trimming edge (an in-sample 0.95 against the R-learner's 0.05 cut) moves a row in
    or out: ψ̂ differed by up to 0.35 between two calls on the same rows. Fits keep every thread."""
    def ordered(self, X):
        n_jobs = self.n_jobs
        self.n_jobs = 1
        try:
            return getattr(super(sub, self), method)(X)
        finally:
            self.n_jobs = n_jobs
    name = f"Ordered{cls.__name__}"
    sub = type(name, (cls,), {method: ordered, "__module__": __name__, "__qualname__": name})
    globals()[name] = sub  # where pickle looks it up
    return sub


def _rf(n_jobs=-1):
    from sklearn.ensemble import RandomForestRegressor

    cls = _in_order(RandomForestRegressor, "predict")
    return cls(n_estimators=100, max_depth=20, max_features="sqrt", n_jobs=n_jobs, random_state=42)


def rf_quality(method, X, t, o, X_test, gold_label=None):
    """ψ̂ on ``X_test`` from the authors' pipeline; ``method`` in meta_r, meta_dr, golden, preference, pooled, all_golden."""
    g = t == 1
    o = np.where(g, o, o * o[g].std() / o[~g].std())
    if method in ("meta_r", "meta_dr"):
        e = _rf().fit(X, t).predict(X)
        if method == "meta_r":
            m = _rf().fit(X, o).predict(X)
            e = np.clip(e, 0.1, 0.9)
            den = t - e
            keep = np.abs(den) > 0.05
            tau = _rf().fit(X[keep], ((o - m) / den)[keep], sample_weight=(den**2)[keep])
        else:
            mu = _rf().fit(np.c_[X, t], o)
            mu1 = mu.predict(np.c_[X, np.ones_like(t)])
            mu0 = mu.predict(np.c_[X, np.zeros_like(t)])
            e = np.clip(e, 0.05, 0.95)
            den = e * (1 - e)
            keep = den > 0.05
            phi = (t - e) / den * (o - np.where(g, mu1, mu0)) + mu1 - mu0
            tau = _rf().fit(X[keep], phi[keep])
        delta = np.clip(tau.predict(X), -1.2, 1.2)
        return _rf().fit(X, np.where(g, o, o + delta)).predict(X_test)
    if method == "golden":
        return _rf().fit(X[g], o[g]).predict(X_test)
    if method == "preference":
        return _rf().fit(X[~g], o[~g]).predict(X_test)
    if method == "pooled":
        return _rf().fit(X, o).predict(X_test)
    if method == "all_golden":
        return _rf().fit(X, gold_label).predict(X_test)
    raise ValueError(f"no random-forest version of {method!r}")


def econml_quality(method, X, t, o, X_test):
    """ψ̂ from an EconML CATE learner with RF nuisances (``econml_dr``: DRLearner, ``econml_dml``: NonParamDML)."""
    from econml.dml import NonParamDML
    from econml.dr import DRLearner
    from sklearn.ensemble import RandomForestClassifier

    g = t == 1
    o = np.where(g, o, o * o[g].std() / o[~g].std())
    clf = _in_order(RandomForestClassifier, "predict_proba")(n_estimators=100, max_depth=20, max_features="sqrt",
                                                             n_jobs=-1, random_state=42)
    if method == "econml_dr":
        est = DRLearner(model_propensity=clf, model_regression=_rf(), model_final=_rf(), cv=5,
                        min_propensity=0.05, random_state=0)  # the authors' DR clip level
    else:
        est = NonParamDML(model_y=_rf(), model_t=clf, model_final=_rf(), discrete_treatment=True, cv=5, random_state=0)
    est.fit(o, t.astype(int), X=X)
    delta = est.effect(X)
    return _rf().fit(X, np.where(g, o, o + delta)).predict(X_test)
