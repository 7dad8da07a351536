"""Routing among K models: the switch engine against brute force, the two-model rule as its K = 2 case,
budget calibration, and the vmapped per-model Meta-Routers against separate fits."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import SHARED_DATA
from mrjax import MetaRouter
from mrjax.multi import MultiRouter
from mrjax.router import (
    breakpoints, calibrate_multi_budget, evaluate_multi_routing, multi_breakpoints, multi_curve, route, route_multi,
    single_model_hull, tradeoff_curve,
)

EPS32 = float(np.finfo(np.float32).eps)
NINE = os.path.join(SHARED_DATA, "llmrouter-9models")


def _brute(score, cost, weights):
    """``argmax_k s_k − w·c_k`` in float64 by a loop, ties to the cheaper model, then the lower index; NaN
    scores never chosen; a query without any score gets its cheapest model."""
    n, K = score.shape
    out = np.empty((len(weights), n), np.int64)
    for a, w in enumerate(np.asarray(weights, np.float64)):
        for q in range(n):
            keys = [((score[q, k] - w * cost[q, k]), -cost[q, k], -k) for k in range(K) if not np.isnan(score[q, k])]
            out[a, q] = -max(keys)[2] if keys else int(np.argmin(cost[q]))
    return out


def _awkward(seed, n=60):
    """Scores on a half-integer grid and costs in {0, 1, 2} (many exact ties, equal costs), NaN scores,
    per-model or per-query costs. Cost gaps of 1 or 2 make every switch point exact in binary, so the
    float64 reference decides the ties at the switch points as the rule does, not by rounding."""
    rng = np.random.default_rng(seed)
    K = int(rng.integers(2, 7))
    score = (rng.integers(-3, 4, size=(n, K)) / 2).astype(np.float32)
    if seed % 3 == 0:
        score[rng.random((n, K)) < 0.2] = np.nan
        score[0] = np.nan  # a query with no score at all
    cost = rng.choice([0.0, 1.0, 2.0], size=(n, K) if seed % 2 else K)
    cost = np.broadcast_to(cost, (n, K))
    return score, cost.astype(np.float32), rng


@pytest.mark.parametrize("seed", range(6))
def test_choices_and_curves_equal_brute_force_also_on_the_switch_points(seed):
    score, cost, rng = _awkward(seed)
    n, K = score.shape
    bp = multi_breakpoints(score, cost)
    switches = np.asarray(bp.sorted_switch)
    # Every switch point exactly (where ties are decided), weights between them, and far outside.
    w = np.concatenate([switches[np.isfinite(switches)], rng.normal(0, 3, 30), [-1e3, 0.0, 1e3]]).astype(np.float32)
    want = _brute(score.astype(np.float64), cost.astype(np.float64), w)
    np.testing.assert_array_equal(np.asarray(route_multi(bp, w)), want)
    values = rng.normal(size=(3, n, K)).astype(np.float32)
    curve = multi_curve(bp, w, values)
    picked = lambda m: np.take_along_axis(np.broadcast_to(m, (len(w), n, K)), want[..., None], 2)[..., 0]
    # Usage is a count: exact.
    np.testing.assert_array_equal(np.asarray(curve.usage) * n, np.stack([(want == k).sum(1) for k in range(K)], 1))
    # Sums of n float32 changes: within Higham's n·ε·Σ|·| of the float64 reference.
    tol_c = n * EPS32 * 2 * np.abs(cost).sum() / n + 1e-6
    np.testing.assert_allclose(curve.cost, picked(cost.astype(np.float64)).mean(1), rtol=0, atol=tol_c)
    for s in range(3):
        q = picked(values[s].astype(np.float64)).mean(1)
        tol = n * EPS32 * 2 * np.abs(values[s]).sum() / n + 1e-6
        np.testing.assert_allclose(curve.quality[s], q, rtol=0, atol=tol)
        c64 = picked(cost.astype(np.float64)).mean(1)
        bound = tol + np.abs(w) * tol_c + 2 * EPS32 * np.abs(w * c64)  # plus the float32 product and difference
        assert np.all(np.abs(np.asarray(curve.value[s], np.float64) - (q - w * c64)) <= bound)


def test_two_models_are_the_two_model_rule_and_curves():
    rng = np.random.default_rng(7)
    n = 400
    psi = np.round(rng.normal(size=n), 1).astype(np.float32)
    cp = rng.choice([0.5, 1.0, 2.0], size=n).astype(np.float32)
    ca = rng.choice([0.0, 0.25], size=n).astype(np.float32)
    gains = rng.normal(size=n).astype(np.float32)
    bp2 = breakpoints(jnp.asarray(psi), jnp.asarray(cp), jnp.asarray(ca))
    w = np.concatenate([np.asarray(bp2.falling)[np.isfinite(np.asarray(bp2.falling))], np.linspace(-3, 3, 50)])
    w = w.astype(np.float32)
    bpk = multi_breakpoints(np.stack([np.zeros(n, np.float32), psi], 1), np.stack([ca, cp], 1))
    np.testing.assert_array_equal(np.asarray(route_multi(bpk, w)) == 1, np.asarray(route(psi, w, cp, ca)))
    two = tradeoff_curve(bp2, w, gains)
    many = multi_curve(bpk, w, np.stack([np.zeros(n, np.float32), gains], 1))
    np.testing.assert_array_equal(np.asarray(many.usage[:, 1]), np.asarray(two.usage))
    np.testing.assert_allclose(many.cost, two.cost, rtol=0, atol=n * EPS32 * 2)
    np.testing.assert_allclose(many.quality, two.quality, rtol=0, atol=n * EPS32 * np.abs(gains).mean())


def test_jit_equals_eager_and_a_nan_weight_chooses_nothing():
    score, cost, _ = _awkward(4)
    w = jnp.asarray([-1.0, 0.0, 0.5, jnp.nan])
    eager = multi_curve(multi_breakpoints(score, cost), w, score)
    jitted = jax.jit(lambda s, c, w: multi_curve(multi_breakpoints(s, c), w, s))(score, cost, w)
    for a, b in zip(eager, jitted):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    chosen = np.asarray(route_multi(multi_breakpoints(score, cost), w))
    assert (chosen[3] == -1).all() and (chosen[:3] >= 0).all()
    assert np.isnan(np.asarray(eager.cost[3])) and np.isnan(np.asarray(eager.usage[3])).all()


def test_budget_calibration_spends_at_most_the_budget_and_no_smaller_weight_does():
    rng = np.random.default_rng(3)
    n, K = 300, 5
    score = rng.normal(size=(n, K)).astype(np.float32)
    cost = np.tile(np.asarray([0.1, 0.2, 0.5, 0.9, 0.9], np.float32), (n, 1)) * rng.uniform(0.5, 2, size=(n, 1))
    cost = cost.astype(np.float32)
    bp = multi_breakpoints(score, cost)
    least = float(multi_curve(bp, jnp.inf).cost[0])
    budgets = np.asarray([least, 0.2, 0.3, 0.45, 0.6, 5.0], np.float32)
    cal = calibrate_multi_budget(bp, budgets)
    w = np.asarray(cal.cost_weight)
    assert (w >= 0).all() and (np.diff(w) <= 0).all()
    assert (np.asarray(cal.cost) <= budgets + 1e-6).all()
    # What each weight achieves is its own curve's; any smaller weight (still ≥ 0) spends more than the budget.
    again = multi_curve(bp, w, score)
    np.testing.assert_array_equal(np.asarray(again.cost), np.asarray(cal.cost))
    switches = np.asarray(bp.sorted_switch)
    for b, wb in zip(budgets, w):
        smaller = switches[(switches < wb) & (switches >= 0)]
        if smaller.size:
            assert float(multi_curve(bp, smaller.max()).cost[0]) > b
    # A large budget stops at w = 0: the most estimated quality of any weight.
    fine = multi_curve(bp, np.linspace(0, 20, 4001, dtype=np.float32), score)
    assert float(again.quality[-1]) >= float(np.max(fine.quality)) - 1e-6


def test_engine_rejects_shapes_it_cannot_use():
    score = np.zeros((5, 3), np.float32)
    with pytest.raises(ValueError, match=r"cost: expected shape \(3,\).*\(5, 3\)"):
        multi_breakpoints(score, np.zeros(4))
    with pytest.raises(ValueError, match=r"K >= 2"):
        multi_breakpoints(np.zeros((5, 1)), np.zeros(1))
    with pytest.raises(ValueError, match=r"values: expected shape \(5, 3\)"):
        multi_curve(multi_breakpoints(score, np.arange(3.0)), 0.0, np.zeros((5, 4)))


@pytest.mark.parametrize("seed", range(4))
def test_single_model_hull_is_the_best_mixture_within_the_cost(seed):
    """Against brute force: every mixture of two or three models on a fine grid of shares; the best one
    costing at most c never beats the hull at c (three-model mixtures included: the hull is concave), and
    comes within the grid's resolution of it."""
    rng = np.random.default_rng(seed)
    K = int(rng.integers(2, 7))
    mc = rng.choice([0.0, 0.5, 1.0, 1.5, 2.0, 3.0], size=K)  # equal costs happen
    mq = rng.normal(size=K)
    c = np.linspace(-0.5, 3.5, 81)
    hull = np.asarray(single_model_hull(jnp.asarray(mc), jnp.asarray(mq), jnp.asarray(c)))
    share = np.linspace(0, 1, 401)
    pc = (share[:, None, None] * mc[None, :, None] + (1 - share[:, None, None]) * mc[None, None, :]).reshape(-1)
    pq = (share[:, None, None] * mq[None, :, None] + (1 - share[:, None, None]) * mq[None, None, :]).reshape(-1)
    t = rng.dirichlet(np.ones(K), size=20_000)  # any mixture of all K models
    pc, pq = np.concatenate([pc, t @ mc]), np.concatenate([pq, t @ mq])
    best = np.array([pq[pc <= max(x, mc.min()) + 1e-12].max() for x in c])
    gap = mc[:, None] - mc[None, :]
    slope = np.max(np.abs(mq[:, None] - mq[None, :]) / np.where(gap > 0, gap, np.inf))  # the steepest chord
    tol = 1e-6 * (1 + np.abs(best))  # the hull in float32
    assert (best <= hull + tol).all()
    assert (hull - best <= slope * np.ptp(mc) / 400 + tol).all()  # one step of the share grid
    assert (np.diff(hull) >= -2e-6 * (1 + np.abs(hull[1:]))).all()  # never falls as the budget grows (but by rounding)


def test_multi_evaluation_equals_numpy_and_integer_weights_repeat_rows():
    rng = np.random.default_rng(5)
    n, K, T = 80, 4, 6
    values = rng.integers(0, 2, size=(n, K)).astype(np.float32)
    cost = (rng.uniform(0.5, 1.5, size=(n, 1)) * np.asarray([0.1, 0.3, 0.6, 1.0])).astype(np.float32)
    chosen = rng.integers(0, K, size=(T, n))
    budget = np.linspace(0.1, 1.0, T).astype(np.float32)
    ev = evaluate_multi_routing(chosen, values, cost, budget)
    rows = np.arange(n)
    quality = np.array([values[rows, ch].mean() for ch in chosen])
    spent = np.array([cost[rows, ch].mean() for ch in chosen])
    np.testing.assert_allclose(np.asarray(ev.quality), quality, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ev.cost), spent, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ev.model_quality), values.mean(0), rtol=1e-6)
    np.testing.assert_allclose(float(ev.oracle), values.max(1).mean(), rtol=1e-6)
    hull = np.asarray(single_model_hull(ev.model_cost, ev.model_quality, ev.cost))
    np.testing.assert_allclose(np.asarray(ev.gain), quality - hull, atol=1e-6)
    np.testing.assert_allclose(float(ev.mean_gain), np.mean(quality - hull), atol=1e-6)
    # Integer weights equal repeated rows; vmap over weights equals a loop.
    w = rng.integers(0, 3, size=(3, n)).astype(np.float32)
    rep = np.repeat(rows, w[0].astype(int))
    weighted = evaluate_multi_routing(chosen, values, cost, budget, w[0])
    repeated = evaluate_multi_routing(chosen[:, rep], values[rep], cost[rep], budget)
    for a, b in zip(weighted, repeated):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    batch = jax.jit(jax.vmap(lambda v: evaluate_multi_routing(chosen, values, cost, budget, v)))(jnp.asarray(w))
    for i in range(3):
        one = evaluate_multi_routing(chosen, values, cost, budget, w[i])
        np.testing.assert_allclose(np.asarray(batch.mean_quality[i]), np.asarray(one.mean_quality), rtol=1e-6)
    with pytest.raises(ValueError, match=r"chosen: expected shape \(6, 80\)"):
        evaluate_multi_routing(chosen[:, :10], values, cost, budget)
    with pytest.raises(ValueError, match=r"values: expected shape \(n, K\)"):
        evaluate_multi_routing(chosen, values[:, :1], cost[:, :1], budget)


def _toy(seed=0, n_gold=120, n_pref=600, d=5, K=3):
    """Three models whose gains over model 0 depend on x0 and x1; a judge that adds +0.6 to model 2."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_gold + n_pref, d)).astype(np.float32)
    mean = np.stack([np.zeros(len(X)), 0.8 * np.tanh(X[:, 0]), 0.6 * X[:, 1]], 1)
    gold = (mean + rng.normal(0, 0.5, size=mean.shape)).astype(np.float32)
    pref = (mean + np.asarray([0, 0, 0.6]) + rng.normal(0, 0.5, size=mean.shape)).astype(np.float32)
    return X[:n_gold], gold[:n_gold], X[n_gold:], pref[n_gold:]


@pytest.mark.slow
def test_multi_router_is_one_meta_router_per_model_gain():
    Xg, gold, Xp, pref = _toy()
    multi = MultiRouter(reference=0, learner="ridge", relevance=False, seed=3).fit(Xg, gold, Xp, pref)
    psi = multi.quality_gain(Xp[:50])
    assert psi.shape == (50, 3) and (psi[:, 0] == 0).all()
    for k in (1, 2):
        one = MetaRouter(learner="ridge", relevance=False, seed=3).fit(Xg, gold[:, k] - gold[:, 0], Xp,
                                                                          pref[:, k] - pref[:, 0])
        # vmapped against separate programs: the same arithmetic up to float32 reassociation
        np.testing.assert_allclose(psi[:, k], one.quality_gain(Xp[:50]), rtol=0, atol=1e-4)
        np.testing.assert_allclose(multi.routers_[k].effect(Xp[:50]), one.effect(Xp[:50]), rtol=0, atol=1e-4)
    # The judge's +0.6 for model 2 is found as its bias, and routing agrees with the engine on ψ̂.
    assert abs(float(np.mean(multi.routers_[2].effect(Xp))) + 0.6) < 0.15
    cost = np.asarray([0.0, 0.5, 0.5])
    np.testing.assert_array_equal(multi.route(Xp[:50], [0.0, 1.0], cost),
                                  np.asarray(route_multi(multi_breakpoints(psi, cost), jnp.asarray([0.0, 1.0]))))
    cal = multi.calibrate(Xp, [0.1, 0.3], cost)
    assert (cal.cost <= np.asarray([0.1, 0.3]) + 1e-6).all() and cal.usage.shape == (2, 3)


@pytest.mark.slow
def test_multi_router_names_its_mistakes():
    import pandas as pd

    Xg, gold, Xp, pref = _toy(n_gold=40, n_pref=80)
    with pytest.raises(ValueError, match="gold_scores has 3 models, preference_scores 2"):
        MultiRouter().fit(Xg, gold, Xp, pref[:, :2])
    with pytest.raises(ValueError, match="reference 'gpt' is not a model"):
        MultiRouter(reference="gpt").fit(Xg, pd.DataFrame(gold, columns=list("abc")), Xp,
                                         pd.DataFrame(pref, columns=list("abc")))
    with pytest.raises(ValueError, match=r"reference must be a model index in \[0, 3\)"):
        MultiRouter(reference=3).fit(Xg, gold, Xp, pref)
    bad = gold.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="gold_scores"):
        MultiRouter().fit(Xg, bad, Xp, pref)
    with pytest.raises(ValueError, match=r"gold_scores: 39 rows for 40 feature rows"):
        MultiRouter().fit(Xg, gold[1:], Xp, pref)
    with pytest.raises(ValueError, match="learner"):
        MultiRouter(learner="nope")
    router = MultiRouter(learner="ridge", relevance=False).fit(Xg, pd.DataFrame(gold, columns=list("abc")), Xp,
                                                                pd.DataFrame(pref, columns=list("abc")))
    assert router.models_ == ["a", "b", "c"] and sorted(router.routers_) == ["b", "c"]
    with pytest.raises(ValueError, match=r"cost: expected shape \(3,\)"):
        router.route(Xp, 0.0, [1.0, 2.0])
    with pytest.raises(ValueError, match="below the cost of the cheapest choice"):
        router.calibrate(Xp, 0.05, [0.1, 0.2, 0.3])
    # A budget equal to the cheapest policy's cost computed in float64 (the engine sums in float32, here one
    # ulp above it) buys that policy.
    cost = [0.007903, 0.02, 0.07]
    assert float(np.float32(0.007903)) > 0.007903
    cal = router.calibrate(Xp, 0.007903, cost)
    np.testing.assert_array_equal(cal.usage[0], [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"budget 0.0079 is below"):
        router.calibrate(Xp, 0.0079, cost)


needs_nine = pytest.mark.skipif(not os.path.isdir(NINE), reason=f"real data folder absent: {NINE} (set MRJAX_DATA "
                                                                   "to the folder holding llmrouter-9models/)")


@needs_nine
def test_nine_model_loader_reproduces_the_data_readme():
    from mrjax.data import load_llmrouter

    pool = load_llmrouter(NINE)
    assert pool.embedding.shape == (6108, 384) and pool.correct.shape == (6108, 9)
    assert int(pool.is_test.sum()) == 500 and (pool.cluster[pool.is_test] == -1).all()
    acc = dict(zip(pool.models, pool.correct.mean(0)))
    assert round(float(acc["llama3-chatqa-1.5-8b"]), 3) == 0.159 and round(float(max(acc.values())), 3) == 0.592
    assert round(float(acc["gemma-2-9b-it"]), 3) == 0.508
    assert round(float(pool.correct.max(1).mean()), 3) == 0.770
    # The judge favours larger models: between the 70B and 8B models of one family its gap far exceeds gold's;
    # without the size and length terms it tracks gold's (binomial se of a gap on 6,108 rows ≈ 0.01).
    k70, k8 = pool.models.index("llama3-chatqa-1.5-70b"), pool.models.index("llama3-chatqa-1.5-8b")
    gold_gap = pool.correct[:, k70].mean() - pool.correct[:, k8].mean()
    judge_gap = pool.preference[:, k70].mean() - pool.preference[:, k8].mean()
    assert judge_gap > gold_gap + 0.3
    same = load_llmrouter(NINE, seed=0)
    np.testing.assert_array_equal(same.preference, pool.preference)
    fair = load_llmrouter(NINE, size_bias=0.0, length_coef=0.0, seed=1)
    assert abs((fair.preference[:, k70].mean() - fair.preference[:, k8].mean()) - gold_gap) < 0.05


@pytest.mark.slow
def test_multi_router_saves_and_loads_the_same_gains_bit_for_bit(tmp_path):
    import pandas as pd

    from mrjax._persist import LoadError

    Xg, gold, Xp, pref = _toy(seed=1, n_gold=60, n_pref=200)
    cols = ["cheap", "mid", "dear"]
    router = MultiRouter(reference="cheap", learner="ridge", relevance=False, n_folds=2, seed=5).fit(
        Xg, pd.DataFrame(gold, columns=cols), Xp, pd.DataFrame(pref, columns=cols))
    path = str(tmp_path / "multi")
    router.save(path, metadata={"note": "toy"})
    with pytest.raises(ValueError, match="the folder exists"):
        router.save(path)
    loaded = MultiRouter.load(path)
    assert loaded.models_ == cols and sorted(loaded.routers_) == ["dear", "mid"] and loaded.metadata_ == {"note": "toy"}
    np.testing.assert_array_equal(loaded.quality_gain(Xp), router.quality_gain(Xp))
    cost = np.asarray([0.1, 0.4, 0.9])
    np.testing.assert_array_equal(loaded.route(Xp, [0.0, 0.5], cost), router.route(Xp, [0.0, 0.5], cost))
    assert repr(loaded) == repr(router)
    os.remove(os.path.join(path, "multi.json"))
    with pytest.raises(LoadError, match="not a saved MultiRouter"):
        MultiRouter.load(path)


@pytest.mark.slow
def test_multi_router_draws_are_joint_and_confidence_routes_on_each_gains_order_statistic(tmp_path):
    """Model 3's scores copy model 1's: with one resample per draw for every model their draws are equal bit
    for bit (separate resamples per model would make them differ). Routing with ``confidence`` α is the
    brute-force rule on the ⌈α·S⌉-th largest draw of each gain, from the kept replicates."""
    Xg, gold, Xp, pref = _toy(seed=2, n_gold=60, n_pref=200)
    gold, pref = np.concatenate([gold, gold[:, 1:2]], 1), np.concatenate([pref, pref[:, 1:2]], 1)
    multi = MultiRouter(reference=0, learner="ridge", relevance=False, n_folds=2, seed=4).fit(Xg, gold, Xp, pref)
    Xq, S, alpha = Xp[:40], 30, 0.8
    D = multi.draws(Xq, n_replicates=S)
    assert D.shape == (S, 40, 4) and (D[..., 0] == 0).all()
    np.testing.assert_array_equal(D[..., 3], D[..., 1])
    assert np.std(D[..., 1], axis=0).min() > 0  # the replicates differ
    np.testing.assert_array_equal(D[..., 2], multi.routers_[2].draws(Xq, n_replicates=S))
    lower, upper = multi.quality_interval(Xq, n_replicates=S, level=0.9)
    lo2, hi2 = multi.routers_[2].quality_interval(Xq, n_replicates=S, level=0.9)
    np.testing.assert_array_equal(lower[:, 2], lo2)
    np.testing.assert_array_equal(upper[:, 2], hi2)
    assert (lower[:, 0] == 0).all() and (upper[:, 0] == 0).all() and (lower <= upper).all()

    score = np.sort(D, axis=0)[S - int(np.ceil(alpha * S))]  # P̂(gain > score) ≥ α per model
    cost = np.asarray([0.0, 0.3, 0.5, 0.2], np.float32)
    weights = [0.0, 0.4, 1.5]
    got = multi.route(Xq, weights, cost, confidence=alpha)
    np.testing.assert_array_equal(got, _brute(score, np.broadcast_to(cost, score.shape), weights))
    assert not np.array_equal(got, multi.route(Xq, weights, cost))  # the cautious rule differs from the plug-in
    cal = multi.calibrate(Xq, [0.1, 0.25], cost, confidence=alpha)
    ref = calibrate_multi_budget(multi_breakpoints(jnp.asarray(score), jnp.asarray(cost)), jnp.asarray([0.1, 0.25]))
    np.testing.assert_array_equal(cal.cost_weight, np.asarray(ref.cost_weight))
    assert (cal.cost <= np.asarray([0.1, 0.25]) + 1e-6).all()
    with pytest.raises(ValueError, match="confidence"):
        multi.route(Xq, 0.0, cost, confidence=1.5)
    multi.save(str(tmp_path / "lean"))
    with pytest.raises(RuntimeError, match="keep_data=True"):
        MultiRouter.load(str(tmp_path / "lean")).draws(Xq, n_replicates=S)
