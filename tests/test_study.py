"""The Monte-Carlo study engine and the `mrjax study` command."""
import dataclasses
import json
import pathlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import jax
import jax.numpy as jnp

from mrjax.cli import main
from mrjax.router import area_resamples
from mrjax.sim import StudyConfig, run_study

TINY = dict(n_runs=4, n_test=50, n_gold=20, n_preference=200, n_features_rff=16,
            methods=("meta_r", "pooled", "golden"), batch_size=2)


@pytest.mark.slow
def test_runs_in_one_call_equal_separate_calls():
    """A run's bits do not depend on its batch at these sizes, with the feature relevance (the default) too:
    its Adam search would round differently by batch shape if vmapped (measured: 1.7e-5 after 3 steps), so
    the study runs each run's searches on their own. (A batch of one run, or sums that cross XLA:CPU's size
    for YNNPACK between batches, round differently: docs/design.md.) A last batch that the runs do not fill
    (4 runs in batches of 3) is padded with extra runs that are dropped, not with short arrays."""
    together = run_study(jax.random.key(0), StudyConfig(**TINY), progress=False)
    assert together.efficiency.shape == (4, 3, 61) and together.rmse.shape == (4, 3)
    np.testing.assert_array_equal(together.nonfinite, np.zeros((4, 3), int))  # every ψ̂ finite, and counted
    other_batching = run_study(jax.random.key(0), StudyConfig(**{**TINY, "batch_size": 3}), progress=False)
    small = run_study(jax.random.key(0), StudyConfig(**{**TINY, "n_runs": 3, "batch_size": 8}), progress=False)
    assert small.rmse.shape == (3, 3)
    if jax.default_backend() == "cpu":
        np.testing.assert_array_equal(together.rmse, other_batching.rmse)
        np.testing.assert_array_equal(small.rmse, together.rmse[:3])
    else:
        # GPU libraries pick kernels by batch shape, so a run batched with other companions
        # agrees to float32 rounding (measured on an H200: relative 3.5e-6), not bit for bit.
        np.testing.assert_allclose(together.rmse, other_batching.rmse, rtol=2e-5)
        np.testing.assert_allclose(small.rmse, together.rmse[:3], rtol=2e-5)
    first_two = run_study(jax.random.key(0), StudyConfig(**{**TINY, "n_runs": 2}), progress=False)
    np.testing.assert_array_equal(together.efficiency[:2], first_two.efficiency)
    np.testing.assert_array_equal(together.random[:2], first_two.random)


@pytest.mark.slow
def test_sharded_equals_unsharded_on_four_host_devices():
    code = textwrap.dedent("""
        import jax, numpy as np
        from mrjax.sim import StudyConfig, run_study
        assert jax.local_device_count() == 4, jax.devices()
        cfg = StudyConfig(n_runs=8, n_test=50, n_gold=20, n_preference=200, n_features_rff=16,
                          methods=("meta_r", "pooled"), batch_size=2)
        a = run_study(jax.random.key(3), cfg, progress=False)
        b = run_study(jax.random.key(3), cfg, progress=False, devices=jax.devices()[:1])
        np.testing.assert_array_equal(a.rmse, b.rmse)
        np.testing.assert_array_equal(a.efficiency, b.efficiency)
        print("OK")
    """)
    env = {**os.environ, "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "OK" in out.stdout


def test_study_config_errors():
    with pytest.raises(ValueError, match="unknown methods"):
        StudyConfig(methods=("meta_q",))
    with pytest.raises(ValueError, match="n_runs must be a positive integer"):
        StudyConfig(n_runs=0)
    with pytest.raises(ValueError, match="standardize must be True, False or 'common'"):
        StudyConfig(standardize="pca")


@pytest.mark.slow
def test_cli_study_end_to_end(tmp_path, capsys):
    cfg = tmp_path / "study.toml"  # TINY's settings in batches of 3: the program of test_runs_in_one_call's second study
    cfg.write_text('[study]\nruns = 3\nn_gold = 20\nn_test = 50\nn_preference = 200\n'
                   'n_features_rff = 16\nmethods = ["meta_r", "pooled", "golden"]\nbatch_size = 3\n')
    out = tmp_path / "res"
    assert main(["study", "--config", str(cfg), "--out", str(out), "--quiet", "--normalize", "20"]) == 0
    report = json.loads((out / "results.json").read_text())
    assert set(report["methods"]) == {"meta_r", "pooled", "golden"}
    assert report["config"]["runs"] == 3 and report["config"]["normalize"] == 20.0
    assert report["config"]["standardize"] == "features"  # the simulator's default
    assert len(report["methods"]["meta_r"]["curve"]) == 61
    curves = pd.read_csv(out / "curves.csv")
    assert len(curves) == 3 * 3 * 61
    np.testing.assert_allclose(curves.efficiency_gain, curves.total_efficiency - curves.random_efficiency, rtol=1e-6)
    # The areas' Monte-Carlo error: the spread of the areas over resamples of the written runs (constant
    # normalisation, so the oracle plays no part), and of their paired differences.
    eff = curves.total_efficiency.to_numpy().reshape(3, 3, 61)
    rnd = curves.random_efficiency.to_numpy().reshape(3, 3, 61)[:, 0]
    draws = area_resamples(eff, rnd, np.ones(3), normalize=20.0, n_resamples=1000)
    names = list(curves.method.unique())
    m, p = names.index("meta_r"), names.index("pooled")
    assert report["methods"]["meta_r"]["area_se"] > 0
    np.testing.assert_allclose(report["methods"]["meta_r"]["area_se"], draws[:, m].std(ddof=1), rtol=1e-5)
    np.testing.assert_allclose(report["methods"]["meta_r"]["area_difference_se"]["pooled"],
                               (draws[:, m] - draws[:, p]).std(ddof=1), rtol=1e-5)
    assert set(report["methods"]["golden"]["area_difference_se"]) == {"meta_r", "pooled"}
    # An area undefined in some resamples (every drawn run stopped before the grid) has no se, not a partial one.
    g = names.index("golden")
    assert (report["methods"]["golden"]["area_se"] is None) == (not np.isfinite(draws[:, g]).all())
    png = (out / "efficiency_gain.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "meta_r" in capsys.readouterr().out
    assert report["versions"]["mrjax"] and report["versions"]["jax"]
    # Run again over the same folder: refused without --overwrite, replaced whole with it.
    (out / "stale.txt").write_text("from before")
    assert main(["study", "--config", str(cfg), "--out", str(out), "--quiet"]) == 2
    assert main(["study", "--config", str(cfg), "--out", str(out), "--quiet", "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["curves.csv", "efficiency_gain.pdf", "efficiency_gain.png",
                                                     "efficiency_gain.svg", "results.json"]
    assert (out / "efficiency_gain.pdf").read_bytes()[:5] == b"%PDF-"
    assert b"<svg" in (out / "efficiency_gain.svg").read_bytes()[:1000]
    assert report["commit"] is None or len(report["commit"]) == 40
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("content, message", [
    ("runs = [", "is not valid TOML"),
    ("runs = 2\nbogus = 1\n", "unknown keys ['bogus']"),
    ("runs = 0\n", "n_runs must be a positive integer"),
    ("methods = ['meta_q']\n", "unknown methods"),
    ("normalize = 'half'\n", "normalize must be 'oracle' or a positive number"),
    ("standardize = 'global'\n", "standardize must be one of ('features', 'common', 'none')"),
    ("runs = 1.9\n", "runs must be an integer, got 1.9"),
    ("batch_size = true\n", "batch_size must be an integer, got True"),
    ("bias_strength = 'nan'\n", "bias_strength must be a real number"),
    ("data_dir = '.'\n", "--data-dir: only for real data"),
])
def test_cli_bad_config_exits_nonzero_and_writes_nothing(tmp_path, capsys, content, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(content)
    out = tmp_path / "res"
    assert main(["study", "--config", str(cfg), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.toml"]


def test_cli_missing_config_file(tmp_path, capsys):
    assert main(["study", "--config", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "r")]) == 2
    assert "config file not found" in capsys.readouterr().err


@pytest.mark.slow
def test_study_bootstrap_band_and_cli(tmp_path, capsys):
    from mrjax.data import simulate
    from mrjax.sim import run_keys

    cfg = StudyConfig(**{**TINY, "n_runs": 2, "bootstrap": 8})
    assert cfg.bootstrap_method == "meta_r"
    res = run_study(jax.random.key(1), cfg, progress=False)
    assert res.band.shape == (2, 3, 61)
    lo, hi, truth = res.band[:, 0], res.band[:, 1], res.band[:, 2]
    ok = np.isfinite(lo)
    assert ok.any() and np.all(lo[ok] <= hi[ok])
    # The truth row is the bootstrapped method's true gain against the expected random router.
    for r, k in enumerate(run_keys(jax.random.key(1), 2)):
        k_sim = jax.random.split(k, 3)[0]
        total = float(simulate(k_sim, 20, 200, 50, cfg.simulation).test_truth.quality_gain.sum())
        want = res.efficiency[r, 0] - res.grid * total
        np.testing.assert_allclose(truth[r][np.isfinite(want)], want[np.isfinite(want)], rtol=1e-4, atol=1e-4)
    out = tmp_path / "res"
    # The same study on the command line (the same program: nothing compiles again).
    assert main(["study", "--runs", "2", "--n-gold", "20", "--n-test", "50", "--n-preference", "200",
                 "--n-features-rff", "16", "--methods", "meta_r,pooled,golden", "--batch-size", "2",
                 "--bootstrap", "8", "--out", str(out), "--quiet"]) == 0
    b = json.loads((out / "results.json").read_text())["bootstrap"]
    assert b["method"] == "meta_r" and b["replicates"] == 8 and 0.0 <= b["coverage_mean"] <= 1.0
    assert "within-run 95% bands" in capsys.readouterr().out
    assert main(["study", "--bootstrap", "1", "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "bootstrap must be 0 (none) or at least 2" in capsys.readouterr().err
    with pytest.raises(ValueError, match="bootstrap_method 'golden' is not among"):
        StudyConfig(methods=("meta_r",), bootstrap=4, bootstrap_method="golden")


def _dot_precisions(jaxpr) -> list:
    """The ``precision`` of every dot_general in ``jaxpr`` and all its sub-jaxprs."""
    out = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            out.append(eqn.params["precision"])
        for v in eqn.params.values():
            for sub in (v if isinstance(v, (tuple, list)) else (v,)):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    out.extend(_dot_precisions(inner))
    return out


def _bayes_density_and_prediction(key, sim):
    """The Bayesian model's deterministic parts: preconditioning, log density, prediction."""
    from numpyro.infer.util import log_density

    from mrjax.bayes import BayesConfig, posterior_predict
    from mrjax.bayes._model import BayesFit, _joint_design, _model, _precondition, _prepare

    cfg = BayesConfig(n_features=8)
    std, features, _, c, center, spread, H, y = _prepare(key, sim.data, cfg)
    t, w, p = sim.data.is_gold, sim.data.weight, H.shape[1]
    G = _joint_design(H, t)
    shift, L, prior_sd = _precondition(G, t, y, w, cfg)
    values = {"z": jnp.zeros(2 * p), "gold_noise": 1.0, "preference_noise": 1.0}
    density, _ = log_density(_model, (G, t, y, w, shift, L, prior_sd, cfg), {}, values)
    fit = BayesFit(std, features, center, spread, c, shift[None, :p], shift[None, p:], jnp.ones(1), jnp.ones(1))
    return density, posterior_predict(cfg, fit, sim.test_features)


@pytest.mark.slow  # compile-heavy: kept out of the fast tier
def test_every_matmul_of_a_study_run_is_full_float32():
    """GPUs compute float32 products in TF32 by default (10-bit mantissa); the one-pass fold
    Grams (total minus own fold) and the ridge solves would lose ~1e-3 of their scale to it.
    Every product of a run — simulation, PCA, every method's fit and prediction, the Bayesian
    model — pins full float32, which the jaxpr shows on any backend."""
    from mrjax.data import paper_like
    from mrjax.sim import one_run, pool_run

    config = StudyConfig(**{**TINY, "methods": StudyConfig().methods})
    rng = np.random.default_rng(0)
    E = jnp.asarray(rng.normal(size=(400, 12)), jnp.float32)
    GL, PL = jnp.asarray(rng.integers(-1, 2, 400), jnp.float32), jnp.asarray(rng.normal(size=400), jnp.float32)
    pool_config = dataclasses.replace(config, n_preference=330, n_components=5, standardize="common")
    sim = paper_like(jax.random.key(0), n_gold=20, n_preference=60, n_test=5, n_features=6)
    programs = {
        "one_run": jax.make_jaxpr(lambda k: one_run(k, config))(jax.random.key(1)),
        "pool_run": jax.make_jaxpr(lambda k: pool_run(k, E, GL, PL, pool_config))(jax.random.key(1)),
        "bayes": jax.make_jaxpr(lambda k: _bayes_density_and_prediction(k, sim))(jax.random.key(2)),
    }
    full = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)
    for name, closed in programs.items():
        precisions = _dot_precisions(closed.jaxpr)
        assert len(precisions) > 5, name
        loose = [p for p in precisions if p != full]
        assert not loose, f"{name}: {len(loose)} of {len(precisions)} products at {set(map(str, loose))}"


def test_results_folder_is_checked_before_work_and_kept_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "res"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    assert main(["study", "--out", str(out), "--quiet"]) == 2
    assert "the folder exists; choose another or pass --overwrite" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["study", "--out", str(afile), "--quiet"]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert main(["study", "--out", str(afile / "res"), "--quiet"]) == 2  # its parent is a file
    assert "cannot write in" in capsys.readouterr().err


def test_results_folder_swaps_whole_or_leaves_the_old_one(tmp_path):
    from mrjax._output import PREFIX, check_destination, results_folder

    out = tmp_path / "res"
    out.mkdir()
    (out / "results.json").write_text("old")
    with pytest.raises(RuntimeError):
        with results_folder(str(out)) as tmp:
            (pathlib.Path(tmp) / "results.json").write_text("new")
            raise RuntimeError("an I/O error while writing")
    assert (out / "results.json").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["res"]
    with results_folder(str(out)) as tmp:
        (pathlib.Path(tmp) / "curves.csv").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["curves.csv"]  # the new folder whole, no old file left
    assert [p.name for p in tmp_path.iterdir()] == ["res"]
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~_umask())
    # A folder left by a killed run (its pid is dead) is removed by the next check in that parent.
    orphan = tmp_path / f"{PREFIX}999999999-abc"
    orphan.mkdir()
    check_destination(str(tmp_path / "other"), overwrite=False)
    assert not orphan.exists() and not any(p.name.startswith(PREFIX) for p in tmp_path.iterdir())


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_undefined_curve_has_no_area():
    from mrjax.router import summarize_gain

    eff = np.full((3, 2, 61), np.nan)
    eff[:, 0, :10] = 1.0
    s = summarize_gain(eff, np.zeros((3, 61)), np.ones(3), normalize=1.0)
    assert np.isfinite(s.area[0]) and np.isnan(s.area[1])


def test_the_study_learner_by_name_reaches_every_model():
    """``StudyConfig(learner=…)`` sets ψ̂'s learner and the bias learners' outcome and effect models of every
    method; an unknown name is refused at construction."""
    from mrjax.learners import GradientBoostedTrees

    cfg = StudyConfig(n_runs=2, learner="gbt", methods=("meta_r", "meta_dr", "golden"))
    for rc in cfg.router_configs():
        assert isinstance(rc.quality_learner, GradientBoostedTrees)
        cate = getattr(rc.method, "cate", None)
        if cate is not None:
            assert isinstance(cate.outcome, GradientBoostedTrees) and isinstance(cate.effect, GradientBoostedTrees)
    with pytest.raises(ValueError, match="learner must be one of"):
        StudyConfig(learner="trees")



def test_a_study_program_takes_each_distinct_number_once_and_rebuilds_every_method_s():
    from mrjax.sim import _study

    config = StudyConfig(**{**TINY, "methods": ("meta_r", "meta_dr", "golden")})
    hyper = _study.study_hyper(config)
    leaves, (treedef, index) = _study._layout(hyper)
    flat, _ = jax.tree_util.tree_flatten_with_path(hyper)
    assert len(leaves) < len(flat) and max(index) == len(leaves) - 1
    for (path, leaf), slot in zip(flat, index):  # every leaf rebuilt with its own value
        np.testing.assert_array_equal(np.asarray(leaves[slot]), np.asarray(leaf), err_msg=jax.tree_util.keystr(path))
    places = {}
    for (path, _), slot in zip(flat, index):  # a slot never spans two places of a method's numbers
        places.setdefault(slot, set()).add(jax.tree_util.keystr(path[2:]))
    assert all(len(p) == 1 for p in places.values())
    clip = [i for (path, _), i in zip(flat, index) if "propensity_clip" in jax.tree_util.keystr(path)]
    assert len(clip) == 2 and clip[0] == clip[1]  # the two Meta-Routers' equal clip: one parameter
    routers = list(hyper.routers)
    routers[1] = routers[1]._replace(cate=routers[1].cate._replace(propensity_clip=jnp.asarray([0.01, 0.99])))
    _, (_, index2) = _study._layout(hyper._replace(routers=tuple(routers)))
    clip2 = [i for (path, _), i in zip(flat, index2) if "propensity_clip" in jax.tree_util.keystr(path)]
    assert clip2[0] != clip2[1]  # unequal values stay apart


@pytest.mark.slow
def test_the_meta_routers_of_a_study_fit_their_equal_nuisances_once():
    """With equal numbers as one parameter XLA merges the R and DR Meta-Routers' equal propensity fits (and
    more): the compiled program does fewer flops than the same program with a parameter per leaf."""
    from mrjax.sim import _study

    config = StudyConfig(**{**TINY, "methods": ("meta_r", "meta_dr"), "relevance": False})
    hyper = _study.study_hyper(config)
    leaves, (treedef, index) = _study._layout(hyper)
    flat = jax.tree_util.tree_leaves(hyper)
    keys = np.asarray(jax.random.key_data(_study.run_keys(jax.random.key(0), 2)))

    def flops(args, layout):
        batched, _ = _study._compiled(_study.program_key(config), tuple(jax.devices()), None, False,
                                      "threefry2x32", layout)
        cost = batched.lower(keys, args, ()).compile().cost_analysis()
        return (cost if isinstance(cost, dict) else cost[0])["flops"]

    merged, apart = flops(leaves, (treedef, index)), flops(flat, (treedef, tuple(range(len(flat)))))
    assert merged < 0.9 * apart, (merged, apart)  # measured 0.61
