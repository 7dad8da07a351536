"""Bad input gets a clear error that names the problem, never an internal exception or a silent wrong result."""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mrjax
from mrjax import MetaRouter
from mrjax.learners import Logistic, Ridge
from mrjax.sim import StudyConfig


@pytest.mark.parametrize("kwargs, message", [
    (dict(bias_clip=-1.0), "bias_clip must be > 0"),
    (dict(bias_clip=float("nan")), "bias_clip must be finite"),
    (dict(n_folds=2.5), "n_folds must be an integer"),
    (dict(n_folds=1), "n_folds must be 0"),
    (dict(seed=2**64), "seed must be below 2\\*\\*32"),
    (dict(seed=-1), "seed must be at least 0"),
    (dict(learner="bar"), "learner must be one of"),
    (dict(learner=Logistic()), "learner must be a regressor"),
    (dict(propensity=Ridge()), "propensity must be a classifier"),
    (dict(propensity="bar"), "propensity must be one of"),
    (dict(cate="q"), "cate must be one of"),
    (dict(method="oracle"), "unknown method 'oracle'"),
    (dict(preference_weight=-0.5), "preference_weight must be >= 0"),
    (dict(preference_weight="auto"), "preference_weight must be one of"),
    (dict(propensity_clip=(0.5, 0.2)), "propensity_clip must satisfy"),
    (dict(propensity_clip=(0.1,)), "propensity_clip must be \\(low, high\\)"),
    (dict(standardize="global"), "standardize must be True, False or 'common'"),
    (dict(scale="huge"), "scale must be one of"),
    (dict(trim=0.5), "trim must be in \\[0, 0.5\\)"),
])
def test_every_facade_option_is_checked_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MetaRouter(**kwargs)


def test_set_params_checks_and_keeps_the_old_values_on_error():
    mr = MetaRouter(cate="dr")
    with pytest.raises(ValueError, match="bias_clip must be > 0"):
        mr.set_params(bias_clip=0.0)
    assert mr.bias_clip is None and mr.get_params()["cate"] == "dr"
    with pytest.raises(ValueError, match="unknown parameters \\['colour'\\]"):
        mr.set_params(colour="red")


def test_data_errors_name_the_value():
    rng = np.random.default_rng(0)
    X, y, t = rng.normal(size=(10, 2)), rng.normal(size=10), np.r_[np.ones(3), np.zeros(7)]
    big = X.copy()
    big[4, 1] = 1e39  # finite in float64, inf in the float32 the estimators work in
    with pytest.raises(ValueError, match="first at row 4, column 1: 1e\\+39 \\(overflows float32\\)"):
        mrjax.from_arrays(big, t, y)
    with pytest.raises(ValueError, match="expected real numbers, got dtype complex128"):
        mrjax.from_arrays(X + 1j, t, y)
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": y, "src": ["gold"] * 3 + ["pref"] * 6 + ["Pref "]})
    with pytest.raises(ValueError, match="column 'src': expected exactly two values .* found \\['gold', 'pref', 'Pref '\\]"):
        mrjax.from_dataframe(frame, ["a", "b"], "y", "src", gold_value="gold")
    with pytest.raises(ValueError, match="no row equals gold_value=1"):
        mrjax.from_dataframe(frame, ["a", "b"], "y", "src")
    with pytest.raises(ValueError, match="values other than gold_value='gold' and preference_value='pref': \\['Pref '\\]"):
        mrjax.from_dataframe(frame, ["a", "b"], "y", "src", gold_value="gold", preference_value="pref")
    dup = pd.concat([frame, frame[["a"]]], axis=1)
    with pytest.raises(ValueError, match="duplicated column names: \\['a'\\]"):
        mrjax.from_dataframe(dup, ["a", "b"], "y", "src", gold_value="gold")


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_runs=1.9), "n_runs must be an integer"),
    (dict(n_runs=True), "n_runs must be an integer"),
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(n_folds=1), "n_folds must be 0"),
    (dict(methods="meta_r"), "methods must be a sequence of names"),
    (dict(methods=("meta_r", "meta_r")), "names must be unique"),
    (dict(bootstrap_level=1.5), "bootstrap_level must be in \\(0, 1\\)"),
])
def test_study_config_is_typed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StudyConfig(**kwargs)


_numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**70, 2**70), st.booleans(),
                     st.none(), st.text(max_size=3), st.complex_numbers(max_magnitude=2))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bias_clip=_numbers, n_folds=_numbers, seed=_numbers, preference_weight=_numbers, trim=_numbers)
def test_fuzzed_facade_options_give_a_named_error_or_a_valid_router(bias_clip, n_folds, seed, preference_weight, trim):
    try:
        mr = MetaRouter(bias_clip=bias_clip, n_folds=n_folds, seed=seed, preference_weight=preference_weight, trim=trim)
    except ValueError as err:
        assert any(name in str(err) for name in ("bias_clip", "n_folds", "seed", "preference_weight", "trim"))
        return
    # Accepted: then every number is one the estimator can use.
    lam = float(mr.hyper.preference_weight)
    assert math.isfinite(lam) and lam >= 0 and 0 <= mr.seed < 2**32
    assert mr.n_folds == 0 or mr.n_folds >= 2


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.floats(width=64), st.just(1e39), st.just(float("nan"))), min_size=6, max_size=6),
       st.lists(st.sampled_from([0.0, 1.0, 2.0, 0.5]), min_size=3, max_size=3))
def test_fuzzed_arrays_give_a_named_error_or_a_finite_float32_dataset(values, flags):
    X = np.asarray(values).reshape(3, 2)
    try:
        data = mrjax.from_arrays(X, np.asarray(flags), np.ones(3))
    except ValueError as err:
        assert any(name in str(err) for name in ("features", "is_gold", "label", "weight"))
        return
    assert np.isfinite(np.asarray(data.features)).all() and data.features.dtype == np.float32


@settings(max_examples=100, deadline=None)
@given(n_runs=_numbers, n_gold=_numbers, batch_size=_numbers, n_folds=_numbers, bootstrap=_numbers,
       bootstrap_level=_numbers)
def test_fuzzed_study_configs_give_a_named_error_or_a_valid_config(n_runs, n_gold, batch_size, n_folds, bootstrap,
                                                                   bootstrap_level):
    kwargs = dict(n_runs=n_runs, n_gold=n_gold, batch_size=batch_size, n_folds=n_folds, bootstrap=bootstrap,
                  bootstrap_level=bootstrap_level)
    try:
        cfg = StudyConfig(**kwargs)
    except ValueError as err:
        assert any(name in str(err) for name in kwargs), str(err)
        return
    assert cfg.n_runs >= 1 and cfg.n_gold >= max(cfg.n_folds, 1) and 0 < cfg.bootstrap_level < 1
