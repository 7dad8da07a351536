"""The paper's evaluation protocol against a direct NumPy transcription."""
import numpy as np
import pytest
import jax
import jax.numpy as jnp

from mrjax.router import (
    USAGE_GRID, area_resamples, efficiency_curve, random_curve, routing_area, run_areas, run_curves, summarize_gain,
)


def _np_method_curve(score, gain, grid):
    """Transcription of the protocol: rank by score, stop where score <= 0, interpolate."""
    order = np.argsort(-score, kind="stable")
    n_pos = int(np.sum(score > 0))
    ratios = np.arange(n_pos + 1) / len(score)
    total = np.r_[0.0, np.cumsum(gain[order][:n_pos])]
    out = np.full(len(grid), np.nan)
    for i, u in enumerate(grid):
        if n_pos > 0 and u <= ratios.max():
            out[i] = np.interp(u, ratios, total)
    return out


def _np_random_curve(perm, gain, grid):
    total = np.r_[0.0, np.cumsum(gain[perm])]
    return np.interp(grid, np.arange(len(gain) + 1) / len(gain), total)


def test_method_curve_matches_numpy_with_truncation():
    rng = np.random.default_rng(0)
    for n in (50, 500):
        score = rng.normal(0.1, 1.0, n).astype(np.float32)
        gain = rng.choice([-1.0, 0.0, 1.0], n).astype(np.float32)
        ours = np.asarray(efficiency_curve(jnp.asarray(score), jnp.asarray(gain), jnp.asarray(USAGE_GRID, jnp.float32)))
        ref = _np_method_curve(score, gain, USAGE_GRID)
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
        assert np.isnan(ref).any() and np.isfinite(ref).any()  # the case exercises truncation
        np.testing.assert_allclose(ours[np.isfinite(ours)], ref[np.isfinite(ref)], rtol=1e-5, atol=1e-4)


def test_random_router_matches_numpy_with_same_permutation():
    rng = np.random.default_rng(1)
    gain = rng.normal(size=300).astype(np.float32)
    key = jax.random.key(7)
    perm = np.asarray(jax.random.permutation(key, 300))
    ours = np.asarray(random_curve(key, jnp.asarray(gain), jnp.asarray(USAGE_GRID, jnp.float32)))
    np.testing.assert_allclose(ours, _np_random_curve(perm, gain, USAGE_GRID), rtol=1e-5, atol=1e-4)


def test_summaries_match_numpy_aggregation():
    rng = np.random.default_rng(2)
    R, n = 12, 200
    eff, rnd, orc = [], [], []
    for r in range(R):
        gain = rng.normal(0.2, 1.0, n).astype(np.float32)
        scores = np.stack([gain + rng.normal(0, s, n) for s in (0.5, 3.0)]).astype(np.float32)
        c = run_curves(jax.random.key(r), jnp.asarray(scores), jnp.asarray(gain), jnp.asarray(USAGE_GRID, jnp.float32))
        eff.append(np.asarray(c.efficiency)); rnd.append(np.asarray(c.random)); orc.append(float(c.oracle))
        np.testing.assert_allclose(c.oracle, np.maximum(gain, 0).sum(), rtol=1e-5)
    eff, rnd, orc = np.stack(eff), np.stack(rnd), np.asarray(orc)
    s = summarize_gain(eff, rnd, orc, normalize=10.0)
    gain_runs = eff - rnd[:, None, :]
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = np.nanmean(gain_runs, axis=0) / 10.0
    reached = np.isfinite(gain_runs).sum(0)
    np.testing.assert_array_equal(s.n_runs, reached)
    assert ((reached > 0) & (reached < R / 2)).any()  # the tail the report leaves out exists here
    ref = np.where(reached >= R / 2, ref, np.nan)  # reported where at least half the runs reach the usage
    np.testing.assert_allclose(s.curve, ref, rtol=1e-6)
    full = summarize_gain(eff, rnd, orc, normalize=10.0, min_runs=1 / R)  # every usage some run reaches
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(full.curve, np.where(reached > 0, np.nanmean(gain_runs, 0) / 10.0, np.nan), rtol=1e-6)
    with pytest.raises(ValueError, match="min_runs must be a share"):
        summarize_gain(eff, rnd, orc, min_runs=0.0)
    for m in range(2):
        ok = np.isfinite(s.curve[m])
        i = np.nanargmax(s.curve[m])
        assert s.peak[m] == s.curve[m, i] and s.peak_usage[m] == USAGE_GRID[i]
        last = np.nonzero(ok)[0].max()
        np.testing.assert_allclose(s.area[m], np.trapezoid(s.curve[m, : last + 1], USAGE_GRID[: last + 1]))
    assert s.area[0] > s.area[1]  # the less noisy score routes better
    so = summarize_gain(eff, rnd, orc, normalize="oracle")
    with warnings.catch_warnings():  # grid points where every run's curve has stopped: all-NaN columns
        warnings.simplefilter("ignore", RuntimeWarning)
        ref_o = (np.nanmean(eff, 0) - np.nanmean(rnd, 0)[None]) / (orc.mean() - np.nanmean(rnd, 0))[None]
    np.testing.assert_allclose(so.curve, np.where(reached >= R / 2, ref_o, np.nan), rtol=1e-6)
    sm = summarize_gain(eff, rnd, orc, aggregate="median", normalize=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(sm.curve, np.where(reached >= R / 2, np.nanmedian(gain_runs, axis=0), np.nan))
    with pytest.raises(ValueError, match="aggregate must be"):
        summarize_gain(eff, rnd, orc, aggregate="mode")
    with pytest.raises(ValueError, match="normalize must be a positive constant"):
        summarize_gain(eff, rnd, orc, normalize=0.0)


def test_perfect_score_routes_the_top_gains():
    gain = jnp.asarray(np.linspace(-1, 1, 100) + 0.3, jnp.float32)
    curve = efficiency_curve(gain, gain, jnp.asarray([0.2, 0.4], jnp.float32))
    top = np.sort(np.asarray(gain))[::-1]
    np.testing.assert_allclose(curve, [top[:20].sum(), top[:40].sum()], rtol=1e-5)


def _routing_area_numpy(score, gain, w, a=0.2, b=0.8, n=400_001):
    """Direct transcription: rank rows with weight by score, integrate (routed gain − random
    router's) over the usage grid on a fine mesh, up to the share of rows with score > 0."""
    keep = w > 0
    s, g, ww = score[keep], gain[keep], w[keep]
    order = np.argsort(-s, kind="stable")
    s, g, ww = s[order], g[order], ww[order]
    q = (np.cumsum(ww) - ww / 2) / ww.sum()
    U = min(b, ww[s > 0].sum() / ww.sum())
    u = np.linspace(a, b, n)
    curve = (q[None, :] <= u[:, None]).astype(float) @ (ww * g) - u * (ww * g).sum()
    curve = np.where(u <= U, curve, 0.0)
    return float(np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(u)))


@pytest.mark.slow
def test_routing_area_matches_numpy_integration():
    rng = np.random.default_rng(3)
    for n, frac_pos in ((40, 0.9), (57, 0.5), (30, 0.1)):
        score = rng.normal(size=n) + np.quantile(rng.normal(size=1000), frac_pos)
        gain = rng.normal(size=n) + score
        w = rng.integers(0, 3, n).astype(float)  # bootstrap-like counts, zeros included
        want = _routing_area_numpy(score, gain, w)
        got = float(routing_area(jnp.asarray(score, jnp.float32), jnp.asarray(gain, jnp.float32), jnp.asarray(w, jnp.float32)))
        # mesh step 1.5e-6 times at most n jumps of size |w g| ≲ 10: error below 1e-3
        np.testing.assert_allclose(got, want, atol=1e-3, rtol=1e-4)
    # A perfect ranking beats a reversed one; all scores ≤ 0 route nothing.
    g = jnp.linspace(-1.0, 1.0, 50)
    assert float(routing_area(g + 2.0, g, jnp.ones(50))) > 0 > float(routing_area(-g + 2.0, g, jnp.ones(50)))
    assert float(routing_area(-jnp.ones(50), g, jnp.ones(50))) == 0.0


def test_area_resamples_are_the_study_area_on_runs_drawn_with_replacement():
    rng = np.random.default_rng(5)
    R, G = 40, USAGE_GRID.size
    eff = rng.normal(size=(R, 3, G)).cumsum(-1) + 4.0
    rnd = rng.normal(size=(R, G))
    orc = np.full(R, 50.0)
    draws = area_resamples(eff, rnd, orc, n_resamples=50, seed=7)
    assert draws.shape == (50, 3)
    np.testing.assert_array_equal(draws, area_resamples(eff, rnd, orc, n_resamples=50, seed=7))  # same seed, same bits
    # Curves that never stop: trapezoids are linear, so the area of the mean curve is the mean of the runs' own
    # areas (run_areas, computed independently) over the very runs each resample drew.
    per_run, _ = run_areas(eff, rnd, orc, normalize=1.0)
    draw_rows = np.random.default_rng(7)
    want = np.stack([per_run[draw_rows.integers(0, R, R)].mean(0) for _ in range(50)])
    np.testing.assert_allclose(draws, want, rtol=1e-10)
    assert np.ptp(draws[:, 0]) > 0
    # With stops a resample is summarize_gain on its runs: runs that stopped leave the average where they stop.
    eff[: R // 2, 1, 30:] = np.nan
    stopped = area_resamples(eff, rnd, orc, normalize="oracle", n_resamples=3, seed=1)
    rows = np.random.default_rng(1).integers(0, R, R)
    np.testing.assert_allclose(stopped[0], summarize_gain(eff[rows], rnd[rows], orc[rows], normalize="oracle").area)
    with pytest.raises(ValueError, match="n_resamples"):
        area_resamples(eff, rnd, orc, n_resamples=1)
    with pytest.raises(ValueError, match="normalize"):
        area_resamples(eff, rnd, orc, normalize="peak")
