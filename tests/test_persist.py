"""Saving and loading a fitted router: bit-identical ψ̂ across processes, no pickle, clear errors."""
import json
import os
import subprocess
import sys
import zipfile

import jax
import numpy as np
import pandas as pd
import pytest
from conftest import labelled_frame

from mrjax import DRLearner, MetaRouter, Ridge
from mrjax.data import from_arrays


@pytest.fixture(scope="module")
def fitted():
    F, label, gold = labelled_frame()
    router = MetaRouter(cate=DRLearner(), learner=Ridge(penalty=0.5), relevance=True, progress=False)
    return router.fit(F[gold], label[gold], F[~gold], label[~gold]), F


def test_save_load_round_trip_is_bit_identical_in_a_new_process(fitted, tmp_path):
    router, F = fitted
    path = str(tmp_path / "router")
    router.save(path)
    assert sorted(os.listdir(path)) == ["arrays.npz", "manifest.json"]  # no training data unless asked
    for name in os.listdir(path):  # nothing pickled: every npz member is a plain .npy array
        if name.endswith(".npz"):
            with zipfile.ZipFile(os.path.join(path, name)) as z:
                for member in z.namelist():
                    with z.open(member) as f:
                        header = f.read(10)
                    assert header.startswith(b"\x93NUMPY"), member
                    np.load(os.path.join(path, name), allow_pickle=False)[member[:-4]]
    manifest = json.load(open(os.path.join(path, "manifest.json")))
    assert manifest["format_version"] == 2 and manifest["feature_names"] == list(F.columns)
    assert manifest["params"]["learner"]["class"] == "mrjax.learners._linear:Ridge"
    np.save(tmp_path / "queries.npy", F.to_numpy())
    code = ("import sys, numpy as np; from mrjax import MetaRouter; r = MetaRouter.load(sys.argv[1]); "
            "np.save(sys.argv[3], np.asarray(r.quality_gain(np.load(sys.argv[2]))))")
    subprocess.run([sys.executable, "-c", code, path, str(tmp_path / "queries.npy"), str(tmp_path / "psi.npy")],
                   check=True)
    loaded = MetaRouter.load(path)
    expected = np.asarray(router.quality_gain(F))
    assert np.array_equal(np.load(tmp_path / "psi.npy"), expected)
    assert np.array_equal(np.asarray(loaded.effect(F)), np.asarray(router.effect(F)))
    assert loaded.get_params()["learner"] == router.learner and loaded.feature_names_in_ == list(F.columns)
    pd.testing.assert_frame_equal(loaded.summary(), router.summary())
    relevant = router.summary()["value"]["relevant features"].split(", ")  # named by the frame's columns
    assert len(relevant) == min(5, F.shape[1]) and all(r.split(" (")[0] in F.columns for r in relevant)
    own = router.info_.quality_relevance["lengthscale"]  # ψ̂'s own search: reported, and loaded bit for bit
    assert "quality relevant features" in router.summary().index
    np.testing.assert_array_equal(loaded.info_.quality_relevance["lengthscale"], own)
    with pytest.raises(RuntimeError, match="keep_data=True"):
        loaded.quality_interval(F, n_replicates=4)
    loaded.save(str(tmp_path / "again"))  # a loaded router saves again, without data it never had
    assert np.array_equal(np.asarray(MetaRouter.load(str(tmp_path / "again")).quality_gain(F)), expected)
    with pytest.raises(ValueError, match="no training data"):
        loaded.save(str(tmp_path / "with-data"), keep_data=True)


@pytest.mark.slow  # end to end: fit, bootstrap (and save, load), intervals
def test_keep_data_allows_intervals_after_loading(fitted, tmp_path):
    router, F = fitted
    path = str(tmp_path / "router")
    router.save(path, keep_data=True)
    loaded = MetaRouter.load(path)
    lo, hi = router.quality_interval(F, n_replicates=6)
    lo2, hi2 = loaded.quality_interval(F, n_replicates=6)
    assert np.array_equal(lo.to_numpy(), lo2.to_numpy()) and np.array_equal(hi.to_numpy(), hi2.to_numpy())


def test_load_errors_name_the_problem(fitted, tmp_path):
    router, _ = fitted
    path = str(tmp_path / "router")
    with pytest.raises(ValueError, match="no such router folder"):
        MetaRouter.load(path)
    router.save(path)
    with pytest.raises(ValueError, match="the folder exists"):
        router.save(path)
    router.save(path, overwrite=True)
    manifest_path = os.path.join(path, "manifest.json")
    manifest = json.load(open(manifest_path))
    # A newer format.
    json.dump({**manifest, "format_version": 3}, open(manifest_path, "w"))
    with pytest.raises(ValueError, match="format 3 .* upgrade mrjax"):
        MetaRouter.load(path)
    # A class from outside mrjax is not imported.
    bad = json.loads(json.dumps(manifest))
    bad["params"]["learner"]["class"] = "os:system"
    json.dump(bad, open(manifest_path, "w"))
    with pytest.raises(ValueError, match="outside mrjax"):
        MetaRouter.load(path)
    json.dump(manifest, open(manifest_path, "w"))
    # A tampered array: same shape and dtype, one number changed.
    arrays_path = os.path.join(path, "arrays.npz")
    with np.load(arrays_path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["fit.quality.coef"] = arrays["fit.quality.coef"].copy()
    arrays["fit.quality.coef"][0] += 1.0
    np.savez(arrays_path, **arrays)
    with pytest.raises(ValueError, match="'fit.quality.coef' was altered"):
        MetaRouter.load(path)
    os.remove(arrays_path)
    with pytest.raises(ValueError, match="arrays.npz is missing"):
        MetaRouter.load(path)


def test_save_refuses_values_it_cannot_write_as_data(tmp_path):
    F, label, gold = labelled_frame()
    data = from_arrays(F.to_numpy(), gold.astype(float), label)
    router = MetaRouter(learner=Ridge(penalty=0.5), relevance=False, progress=False).fit(data)  # test_facade's program
    router.learner = Ridge(penalty=lambda: 1.0)  # not a number: must not be written (nor pickled)
    with pytest.raises(TypeError, match="learner.penalty: cannot save a function"):
        router.save(str(tmp_path / "r"))
    assert not os.path.exists(tmp_path / "r")
    assert jax.tree_util.tree_structure(router.fit_) is not None



def test_a_router_saved_in_format_1_loads_with_the_quality_model_on_the_shared_relevance(tmp_path):
    """Format 1 predates ψ̂'s own relevance: its Meta-Routers' ψ̂ used the shared one, and such a folder (no
    ``bias_standardizer`` arrays, a FeatureRelevance without ``quality``) loads as that router, bit for bit."""
    from mrjax.learners import FeatureRelevance

    F, label, gold = labelled_frame()
    router = MetaRouter(learner=Ridge(penalty=0.5), relevance=FeatureRelevance(quality=False), progress=False)
    router.fit(F[gold], label[gold], F[~gold], label[~gold])
    path = str(tmp_path / "router")
    router.save(path)
    manifest_path = os.path.join(path, "manifest.json")
    manifest = json.load(open(manifest_path))
    del manifest["params"]["relevance"]["fields"]["quality"]
    json.dump({**manifest, "format_version": 1}, open(manifest_path, "w"))
    loaded = MetaRouter.load(path)
    assert loaded.relevance.quality is False
    np.testing.assert_array_equal(loaded.quality_gain(F), router.quality_gain(F))
