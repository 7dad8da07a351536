"""Figures a paper can use: method names as people write them, one panel per method with its band,
truncation marked, and vector output (PDF, SVG) beside PNG."""
from __future__ import annotations

import numpy as np

FORMATS = ("png", "pdf", "svg")
_BASE = {"meta": "Meta-Router (R)", "golden": "Gold only", "preference": "Preference only", "pooled": "Pooled",
         "mean_shift": "Mean shift", "all_golden": "All gold (oracle labels)"}
_CATE = {"r": "R", "dr": "DR", "x": "X", "t": "T", "s": "S"}
_SUFFIX = {"cv_routing": "λ by CV on routing", "cv": "λ by CV"}


def display_name(name: str) -> str:
    """``meta_dr_cv`` → ``Meta-Router (DR), λ by CV``; unknown names are kept."""
    suffix = ""
    for key, text in _SUFFIX.items():
        if name.endswith("_" + key):
            name, suffix = name[: -len(key) - 1], ", " + text
            break
    if name.startswith("meta_") and name[5:] in _CATE:
        return f"Meta-Router ({_CATE[name[5:]]}){suffix}"
    return _BASE.get(name, name) + suffix


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, stem: str) -> None:
    for ext in FORMATS:
        fig.savefig(f"{stem}.{ext}", dpi=150 if ext == "png" else None)


def plot_study(stem: str, summary, methods, grid, normalize, n_runs_total: int, band=None) -> None:
    """Efficiency gain vs usage: every method's mean in one panel, then one panel per method with its 95% band
    over runs. A curve is dashed where some runs have stopped routing (their ψ̂ ≤ 0) and ends, marked, where
    fewer than half the runs reach the usage (``summarize_gain``'s ``min_runs``)."""
    plt = _pyplot()
    M = len(methods)
    cols = min(4, M)
    rows = -(-M // cols)
    fig = plt.figure(figsize=(3.2 * cols, 3.6 + 2.6 * rows), constrained_layout=True)
    grid_spec = fig.add_gridspec(rows + 1, cols, height_ratios=[1.6] + [1.0] * rows)
    top = fig.add_subplot(grid_spec[0, :])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ylabel = "efficiency gain" + (" (oracle-normalised)" if normalize == "oracle" else f" (÷ {normalize})")

    def draw(ax, m, color, lw):
        curve, reach = summary.curve[m], summary.n_runs[m]
        full = reach >= n_runs_total
        solid = np.where(full, curve, np.nan)
        ax.plot(grid, solid, color=color, lw=lw, label=display_name(methods[m]))
        partial = np.where(~full | np.roll(~full, -1), curve, np.nan)  # joined to the solid part
        ax.plot(grid, partial, color=color, lw=lw, ls="--")
        ok = np.nonzero(np.isfinite(curve))[0]
        if ok.size and ok[-1] < len(grid) - 1:
            ax.plot(grid[ok[-1]], curve[ok[-1]], marker="|", ms=10, mew=2, color=color)

    for m in range(M):
        draw(top, m, colors[m % len(colors)], 2.0)
    top.axhline(0.0, color="k", lw=0.8, ls=":")
    top.set_xlabel("primary-model usage")
    top.set_ylabel(ylabel)
    top.set_title(f"Efficiency gain over the random router ({n_runs_total} runs; dashed: some runs stopped "
                  "routing, | : fewer than half reach)", fontsize=10)
    top.grid(alpha=0.3)
    top.legend(fontsize=8, ncol=2 if M > 5 else 1)
    for m in range(M):
        ax = fig.add_subplot(grid_spec[1 + m // cols, m % cols], sharey=top)
        color = colors[m % len(colors)]
        for other in range(M):
            if other != m:
                ax.plot(grid, summary.curve[other], color="0.8", lw=0.8)
        ax.fill_between(grid, summary.lower[m], summary.upper[m], color=color, alpha=0.25, lw=0)
        draw(ax, m, color, 1.8)
        if band is not None and band[0] == methods[m]:
            ax.plot(grid, band[1], color="k", lw=1.0, ls=":")
            ax.plot(grid, band[2], color="k", lw=1.0, ls=":", label="mean within-run 95% band")
        ax.axhline(0.0, color="k", lw=0.6, ls=":")
        ax.set_title(display_name(methods[m]), fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        if m // cols == rows - 1:
            ax.set_xlabel("usage", fontsize=8)
    _save(fig, stem)
    plt.close(fig)


def plot_evaluation(stem: str, evaluation, lower, upper, title: str) -> None:
    """One router's efficiency gain per query over the random router on labelled queries, with its bootstrap
    band, and its performance gap recovered (PGR) with the CPT points."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    u = np.asarray(evaluation.usage)
    left.fill_between(u, lower["efficiency_gain"], upper["efficiency_gain"], alpha=0.25, lw=0, label="95% band")
    left.plot(u, evaluation.efficiency_gain, lw=2, label="router")
    left.axhline(0.0, color="k", lw=0.8, ls=":", label="random router")
    left.set_xlabel("primary-model usage")
    left.set_ylabel("gain per query over random")
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    right.fill_between(u, lower["pgr"], upper["pgr"], alpha=0.25, lw=0)
    right.plot(u, evaluation.pgr, lw=2, label=f"router (APGR {float(evaluation.apgr):.3f})")
    right.plot(u, u, color="k", lw=0.8, ls=":", label="random router")
    for level, cpt in zip((0.5, 0.8), np.asarray(evaluation.cpt)):
        if np.isfinite(cpt):
            right.plot([cpt], [level], "o", color="C3")
            right.annotate(f"CPT({level:.0%}) = {cpt:.2f}", (cpt, level), textcoords="offset points", xytext=(6, -12),
                           fontsize=8)
    right.set_xlabel("primary-model usage")
    right.set_ylabel("performance gap recovered")
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    _save(fig, stem)
    plt.close(fig)


def plot_multi_evaluation(stem: str, evaluation, lower, upper, models, title: str) -> None:
    """A router among several models on labelled queries: mean true score against mean cost at each budget,
    with the single models, their hull (the best query-blind mixture) and the oracle; and the gain over the
    hull per budget, with bootstrap bands."""
    from mrjax.router._multi import single_model_hull

    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    mc, mq = np.asarray(evaluation.model_cost), np.asarray(evaluation.model_quality)
    span = np.linspace(mc.min(), mc.max(), 200)
    left.plot(span, np.asarray(single_model_hull(mc, mq, span)), color="k", lw=0.8, ls="--",
              label="best mix of single models")
    left.scatter(mc, mq, color="k", s=14, zorder=3)
    for m, x, y in zip(models, mc, mq):
        right_half = x > 0.5 * (mc.min() + mc.max())  # labels point inwards, so they stay in the panel
        left.annotate(str(m), (x, y), textcoords="offset points", xytext=(-4 if right_half else 4, -10), fontsize=6,
                      ha="right" if right_half else "left")
    cost = np.asarray(evaluation.cost)
    left.fill_between(cost, lower["quality"], upper["quality"], alpha=0.25, lw=0)
    left.plot(cost, evaluation.quality, lw=2, marker=".", label="router")
    left.axhline(float(evaluation.oracle), color="C3", lw=0.8, ls=":", label="oracle")
    left.set_xlabel("mean cost per query")
    left.set_ylabel("mean true score")
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    budget = np.asarray(evaluation.budget)
    right.fill_between(budget, lower["gain"], upper["gain"], alpha=0.25, lw=0)
    right.plot(budget, evaluation.gain, lw=2, marker=".",
               label=f"router (mean {float(evaluation.mean_gain):+.4f})")
    right.axhline(0.0, color="k", lw=0.8, ls="--", label="best mix of single models")
    right.set_xlabel("budget (mean cost per query)")
    right.set_ylabel("score gain over the best mix")
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    _save(fig, stem)
    plt.close(fig)


def plot_sweep(stem: str, frame, axis: str) -> None:
    """A sweep's per-run area of each method against one swept axis: the mean over runs (and over the other
    axes' cells) with ±1.96 standard errors."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    values = list(dict.fromkeys(frame[axis].tolist()))
    numeric = all(isinstance(v, (int, float, np.integer, np.floating)) for v in values)
    xs = sorted(values) if numeric else values
    positions = xs if numeric else list(range(len(xs)))
    for method, g in frame.groupby("method", sort=False):
        mean, se = [], []
        for v in xs:
            a = g.loc[g[axis] == v, "area"].to_numpy(np.float64)
            a = a[np.isfinite(a)]
            mean.append(a.mean() if len(a) else np.nan)
            se.append(a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else np.nan)
        mean, se = np.asarray(mean), np.asarray(se)
        line, = ax.plot(positions, mean, marker="o", label=display_name(str(method)))
        ax.fill_between(positions, mean - 1.96 * se, mean + 1.96 * se, color=line.get_color(), alpha=0.15, lw=0)
    if not numeric:
        ax.set_xticks(positions, [str(v) for v in xs])
    ax.set_xlabel(axis.replace("_", " "))
    ax.set_ylabel("area under the efficiency-gain curve (per run)")
    ax.set_title(f"Sweep over {axis.replace('_', ' ')} (mean over runs and other axes, 95% bands)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, stem)
    plt.close(fig)
