"""The RouteLLM loader reproduces the facts in ../shared/data/README.md."""
import os

import numpy as np
import pytest
import jax
import jax.numpy as jnp

from conftest import SHARED_DATA
from mrjax.cli import _parser, _settings, main
from mrjax.data import load_routellm
from mrjax.sim import StudyConfig, pool_run

DATA_DIR = os.path.join(SHARED_DATA, "routellm-evals")
pytestmark = pytest.mark.skipif(
    not os.path.isdir(DATA_DIR), reason=f"real data folder absent: {DATA_DIR} (set MRJAX_DATA to the folder holding routellm-evals/)")


def test_mmlu_facts():
    pool = load_routellm(DATA_DIR, "mmlu", drop_contaminated=False)
    assert pool.embedding.shape == (14042, 384)
    assert round(pool.weak_correct.mean(), 3) == 0.681
    assert round(pool.strong_correct.mean(), 3) == 0.806
    assert round((pool.weak_correct != pool.strong_correct).mean(), 2) == 0.23
    assert set(np.unique(pool.gold_gain)) == {-1.0, 0.0, 1.0}
    assert len(np.unique(pool.subject)) == 57
    clean = load_routellm(DATA_DIR, "mmlu")
    assert clean.n_contaminated == 5 and clean.embedding.shape[0] == 14037


def test_gsm8k_facts_and_the_real_length_judge():
    pool = load_routellm(DATA_DIR, "gsm8k", drop_contaminated=False)
    assert pool.embedding.shape[0] == 1319
    assert round(pool.weak_correct.mean(), 3) == 0.638
    assert round(pool.strong_correct.mean(), 3) == 0.857
    pl, gl = pool.preference_label, pool.gold_gain
    assert round((pl > 0).mean(), 3) == 0.778  # the strong answer is the longer one
    disc = gl != 0
    assert round((np.sign(gl[disc]) == pl[disc]).mean(), 3) == 0.678
    assert round(np.corrcoef(gl, pl)[0, 1], 3) == 0.016


def test_mmlu_simulated_judge_agreement_and_arguments():
    agree = []
    for seed in range(8):
        pool = load_routellm(DATA_DIR, "mmlu", seed=seed)
        disc = pool.gold_gain != 0
        agree.append((np.sign(pool.gold_gain[disc]) == pool.preference_label[disc]).mean())
    # README: defaults give about 68% agreement on discordant questions; E[σ(1 + N(0, 1.25))] ≈ 0.69.
    # The subject offsets are redrawn per seed (57 subjects), so single seeds spread by ~0.03.
    assert 0.66 < np.mean(agree) < 0.72
    strong = load_routellm(DATA_DIR, "mmlu", judge_strength=4.0, subject_sd=0.0, length_coef=0.0)
    disc = strong.gold_gain != 0
    assert (np.sign(strong.gold_gain[disc]) == strong.preference_label[disc]).mean() > 0.95
    a = load_routellm(DATA_DIR, "mmlu", seed=3).preference_label
    np.testing.assert_array_equal(a, load_routellm(DATA_DIR, "mmlu", seed=3).preference_label)


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="RouteLLM data folder not found"):
        load_routellm(str(tmp_path / "none"), "mmlu")
    with pytest.raises(FileNotFoundError, match="embeddings file not found"):
        load_routellm(str(tmp_path), "gsm8k")
    with pytest.raises(ValueError, match="benchmark must be one of"):
        load_routellm(DATA_DIR, "mt_bench")


@pytest.mark.slow
def test_pool_run_splits_and_scores_real_data():
    pool = load_routellm(DATA_DIR, "gsm8k")
    config = StudyConfig(n_test=200, n_gold=50, n_features_rff=32, n_components=10, methods=("meta_r", "golden", "all_golden"))
    E, GL, PL = (jnp.asarray(a) for a in (pool.embedding, pool.gold_gain, pool.preference_label))
    eff, rnd, orc, rmse, nonfinite = jax.jit(lambda k: pool_run(k, E, GL, PL, config))(jax.random.key(0))
    assert eff.shape == (3, 61) and np.isfinite(np.asarray(rmse)).all()
    np.testing.assert_array_equal(np.asarray(nonfinite), [0, 0, 0])
    # The oracle total is the sum of the positive gold gains of 200 test queries.
    assert 0 < float(orc) <= 200


def test_cli_real_data_and_missing_folder(tmp_path, capsys):
    assert main(["study", "--data", "routellm-gsm8k", "--data-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "data directory not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert main(["study", "--data", "routellm-mmlu", "--out", str(tmp_path / "o")]) == 2
    assert "needs --data-dir" in capsys.readouterr().err
    # Principal components keep their relative scales by default on real data; a flag overrides.
    settings = lambda *a: _settings(_parser().parse_args(["study", "--data", "routellm-mmlu", "--data-dir", DATA_DIR, *a]))
    assert settings()["standardize"] == "common"
    assert settings("--standardize", "features")["standardize"] == "features"
