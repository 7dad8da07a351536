"""Gradient-boosted oblivious trees on quantile bins: weighted, jit- and vmap-safe, fixed shapes.

Each feature is cut into ``n_bins`` bins at the weighted quantiles of the training rows. A tree of depth
``D`` is oblivious (symmetric): level ``l`` splits every node on the same (feature, bin) pair, chosen to
maximise the summed second-order gain of all nodes (XGBoost's gain with an L2 leaf penalty), so a row's
leaf is a D-bit number and prediction is a gather. Gradient and hessian histograms of all nodes come
from one pass per level: a segment sum on CPU (sequential, so deterministic), a matrix product with the
rows' one-hot bins elsewhere (accelerators' scatter-adds use atomics, whose float sums change bits from run
to run; the product does not).
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax._hyper import hyper_field
from mrjax._typing import Array, Hyper, PRNGKey
from mrjax.learners._base import check_xyw


class TreeParams(NamedTuple):
    """A fitted ensemble.

    Attributes
    ----------
    edges : (d, n_bins − 1) bin edges per feature (a value above edge k is in bin k + 1 or higher).
    feature, threshold : (T, D) int32, the split of each level of each tree: right iff bin > threshold.
    leaf : (T, 2**D) leaf values (already shrunk by the learning rate).
    base : () the starting prediction (weighted mean, or its logit).
    """

    edges: Array
    feature: Array
    threshold: Array
    leaf: Array
    base: Array


def quantile_edges(X: Array, weight: Array, n_bins: int) -> Array:
    """``(d, n_bins − 1)`` edges at the weighted quantiles ``k / n_bins`` of each column: the smallest value
    whose cumulative weight reaches each quantile (rows of weight 0 never set an edge; integer weights
    give the edges of repeated rows)."""
    order = jnp.argsort(X, axis=0)
    xs = jnp.take_along_axis(X, order, axis=0)
    cw = jnp.cumsum(weight[order], axis=0)
    q = (jnp.arange(1, n_bins) / n_bins)[None, :] * cw[-1, :][:, None]  # (d, B-1)
    idx = jax.vmap(lambda c, t: jnp.searchsorted(c, t, side="left"))(cw.T, q)
    idx = jnp.clip(idx, 0, X.shape[0] - 1)
    return jnp.take_along_axis(xs.T, idx, axis=1)


def bin_features(edges: Array, X: Array) -> Array:
    """``(n, d)`` int32 bin of each value (0 … n_bins − 1)."""
    return jax.vmap(lambda e, x: jnp.searchsorted(e, x, side="right"), in_axes=(0, 1), out_axes=1)(edges, X).astype(
        jnp.int32)


@dataclasses.dataclass(frozen=True)
class GradientBoostedTrees:
    """Boosted oblivious trees (squared loss for regression, logistic loss for classification).

    Attributes
    ----------
    n_trees, depth, n_bins : static shapes.
    learning_rate : shrinkage of every tree (sweepable).
    l2 : L2 penalty on leaf values, in units of the hessian (the row weight for squared loss).
    min_child_weight : a split whose lighter child has less hessian weight than this in some node
        contributes no gain there.
    task : ``"regression"`` or ``"classification"`` (then ``predict`` gives P(y = 1 | x)).
    """

    n_trees: int = 200
    depth: int = 4
    n_bins: int = 32
    learning_rate: float = hyper_field(0.1)
    l2: float = hyper_field(1.0)
    min_child_weight: float = hyper_field(1.0)
    task: str = "regression"

    def __post_init__(self):
        if self.task not in ("regression", "classification"):
            raise ValueError(f"task must be 'regression' or 'classification', got {self.task!r}")
        for name in ("n_trees", "depth", "n_bins"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.n_bins < 2:
            raise ValueError(f"n_bins must be at least 2, got {self.n_bins}")

    def hyper(self) -> dict[str, Array]:
        return {k: jnp.asarray(getattr(self, k), jnp.float32) for k in ("learning_rate", "l2", "min_child_weight")}

    def fit(self, key: PRNGKey, X: Array, y: Array, weight: Array, hyper: Hyper | None = None) -> TreeParams:
        check_xyw(X, y, weight)
        hyper = self.hyper() if hyper is None else hyper
        lr, l2, mcw = hyper["learning_rate"], hyper["l2"], hyper["min_child_weight"]
        n, d = X.shape
        B, D = self.n_bins, self.depth
        edges = quantile_edges(X, weight, B)
        bins = bin_features(edges, X)
        on_cpu = jax.default_backend() == "cpu"
        if on_cpu:
            cell = (jnp.arange(d)[None, :] * B + bins).reshape(-1)  # (n·d,) the (feature, bin) of each value
        else:
            onehot = (bins[:, :, None] == jnp.arange(B)[None, None, :]).astype(X.dtype).reshape(n, d * B)

        def histogram(node, g, h, m):
            """(2, m, d, B) gradient and hessian sums per node, feature and bin."""
            if on_cpu:
                index = jnp.repeat(node, d) * (d * B) + cell
                values = jnp.stack([jnp.repeat(g, d), jnp.repeat(h, d)], axis=1)
                return jax.ops.segment_sum(values, index, num_segments=m * d * B).T.reshape(2, m, d, B)
            at = (node[:, None] == jnp.arange(m)[None, :]).astype(X.dtype)
            return jnp.matmul(jnp.concatenate([at * g[:, None], at * h[:, None]], axis=1).T, onehot,
                              precision="highest").reshape(2, m, d, B)
        total = jnp.maximum(jnp.sum(weight), 1e-12)
        mean = jnp.sum(weight * y) / total
        classify = self.task == "classification"
        base = jnp.log(jnp.clip(mean, 1e-6, 1 - 1e-6)) - jnp.log1p(-jnp.clip(mean, 1e-6, 1 - 1e-6)) if classify else mean

        def grad_hess(f):
            if classify:
                p = jax.nn.sigmoid(f)
                return weight * (p - y), weight * p * (1 - p)
            return weight * (f - y), weight

        def tree(f, _):
            g, h = grad_hess(f)
            node = jnp.zeros((n,), jnp.int32)
            feats, thrs = [], []
            for level in range(D):
                m = 2 ** level
                G, H = histogram(node, g, h, m)
                GL, HL = jnp.cumsum(G, axis=-1)[..., :-1], jnp.cumsum(H, axis=-1)[..., :-1]  # left = bins ≤ b
                Gt, Ht = G.sum(-1, keepdims=True), H.sum(-1, keepdims=True)
                GR, HR = Gt - GL, Ht - HL
                gain = GL ** 2 / (HL + l2) + GR ** 2 / (HR + l2) - Gt ** 2 / (Ht + l2)
                ok = (HL >= mcw) & (HR >= mcw)
                score = jnp.sum(jnp.where(ok, gain, 0.0), axis=0)  # (d, B-1): summed over nodes
                best = jnp.argmax(score.reshape(-1))
                f_idx, t_idx = best // (B - 1), best % (B - 1)
                feats.append(f_idx)
                thrs.append(t_idx)
                right = (jnp.take(bins, f_idx, axis=1) > t_idx).astype(jnp.int32)
                node = node + right * m
            leaves = 2 ** D
            Gl = jax.ops.segment_sum(g, node, num_segments=leaves) if on_cpu else \
                jnp.matmul(g, (node[:, None] == jnp.arange(leaves)[None, :]).astype(X.dtype), precision="highest")
            Hl = jax.ops.segment_sum(h, node, num_segments=leaves) if on_cpu else \
                jnp.matmul(h, (node[:, None] == jnp.arange(leaves)[None, :]).astype(X.dtype), precision="highest")
            leaf = -lr * Gl / (Hl + l2)
            return f + leaf[node], (jnp.stack(feats).astype(jnp.int32), jnp.stack(thrs).astype(jnp.int32), leaf)

        f0 = jnp.full((n,), base, X.dtype)
        _, (feature, threshold, leaf) = jax.lax.scan(tree, f0, None, length=self.n_trees)
        return TreeParams(edges, feature, threshold, leaf, base)

    def predict(self, params: TreeParams, X: Array) -> Array:
        bins = bin_features(params.edges, X)
        D = params.feature.shape[1]

        def one(f, t):
            feature, threshold, leaf = t
            node = jnp.zeros((X.shape[0],), jnp.int32)
            for level in range(D):
                node = node + (jnp.take(bins, feature[level], axis=1) > threshold[level]).astype(jnp.int32) * 2 ** level
            return f + leaf[node], None

        f, _ = jax.lax.scan(one, jnp.full((X.shape[0],), params.base, X.dtype),
                            (params.feature, params.threshold, params.leaf))
        return jax.nn.sigmoid(f) if self.task == "classification" else f
