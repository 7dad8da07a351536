"""Tree ensembles on quantile bins — gradient boosting and random forests — weighted, jit- and
vmap-safe, with fixed shapes.

Each feature is cut into ``n_bins`` bins at the weighted quantiles of the training rows. A tree of depth
``D`` is oblivious (symmetric): level ``l`` splits every node on the same (feature, bin) pair, chosen to
maximise the summed second-order gain of all nodes (XGBoost's gain with an L2 leaf penalty), so a row's
leaf is a D-bit number and prediction is a gather. Gradient and hessian histograms of all nodes come
from one pass per level: a segment sum on CPU (sequential, so deterministic), elsewhere a matrix product
with one feature's one-hot bins at a time (accelerators' scatter-adds use atomics, whose float sums change
bits from run to run; the product does not). A random forest grows level-wise trees (each node its own split) on
Poisson-bagged weights with a random subset of features per node, and averages their leaf means; on CPU its
deep levels, where most histogram cells would be empty, search the rows sorted by node and bin instead.
"""
from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax._hyper import hyper_field
from mrjax._typing import Array, Hyper, PRNGKey
from mrjax.learners._base import check_xyw, positive_first, window


class TreeParams(NamedTuple):
    """A fitted ensemble.

    Attributes
    ----------
    edges : (d, n_bins − 1) bin edges per feature (a value above edge k is in bin k + 1 or higher).
    feature, threshold : (T, 2**D − 1) int32, the split of each node of each tree, level by level (node k of
        level l at ``2**l − 1 + k``; all equal in an oblivious tree's level): a row goes right iff its bin >
        threshold. Stored without padding, so a deep forest holds ``2**D`` nodes a tree, not ``D · 2**(D−1)``.
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
    # One sort per column, carrying the weights, along the contiguous axis (4× faster on CPU than an
    # argsort down the columns followed by a gather).
    xs, ws = jax.lax.sort((X.T, jnp.broadcast_to(weight, X.T.shape)), dimension=1, num_keys=1, is_stable=True)
    cw = jnp.cumsum(ws, axis=1)
    q = (jnp.arange(1, n_bins) / n_bins)[None, :] * cw[:, -1:]  # (d, B-1)
    idx = jax.vmap(lambda c, t: jnp.searchsorted(c, t, side="left"))(cw, q)
    idx = jnp.clip(idx, 0, X.shape[0] - 1)
    return jnp.take_along_axis(xs, idx, axis=1)


def bin_features(edges: Array, X: Array) -> Array:
    """``(n, d)`` int32 bin of each value (0 … n_bins − 1)."""
    return jax.vmap(lambda e, x: jnp.searchsorted(e, x, side="right"), in_axes=(0, 1), out_axes=1)(edges, X).astype(
        jnp.int32)


class _Binned(NamedTuple):
    """The training rows on their bins, with what the histograms need."""

    bins: Array  # (n, d) int32
    cell: Array | None  # (n·d,) bin·d + feature, for a segment sum (CPU); None: one-hot products


def _binned(X: Array, edges: Array, scatter: bool | None = None) -> _Binned:
    """``scatter`` (default: on CPU) sums histograms by segment sum, else by products with one-hot bins."""
    return _cells(bin_features(edges, X), jax.default_backend() == "cpu" if scatter is None else scatter)


def _cells(bins: Array, scatter: bool) -> _Binned:
    if not scatter:
        return _Binned(bins, None)
    return _Binned(bins, (bins * bins.shape[1] + jnp.arange(bins.shape[1])[None, :]).reshape(-1))


def _sums(b: _Binned, node: Array, g: Array, h: Array, m: int, n_bins: int) -> tuple[Array, Array]:
    """Gradient and hessian sums per bin, feature and node: two ``(n_bins, d, m)`` arrays, bins first so that the
    running sums over the bins step through contiguous ``(d, m)`` slices, with no transpose before or after."""
    n, d = b.bins.shape
    if b.cell is not None:
        index = b.cell * m + jnp.repeat(node, d)
        return tuple(jax.ops.segment_sum(jnp.repeat(v, d), index, num_segments=n_bins * d * m).reshape(n_bins, d, m)
                     for v in (g, h))
    at = (node[:, None] == jnp.arange(m)[None, :]).astype(g.dtype)
    lhs = jnp.concatenate([at * g[:, None], at * h[:, None]], axis=1).T  # (2m, n)

    def feature(column):  # one feature's (n, n_bins) one-hot at a time: memory O(n · n_bins), not O(n · d · n_bins)
        onehot = (column[:, None] == jnp.arange(n_bins)[None, :]).astype(g.dtype)
        return jnp.matmul(lhs, onehot, precision="highest")

    out = jax.lax.map(feature, b.bins.T).reshape(d, 2, m, n_bins)
    return out[:, 0].transpose(2, 0, 1), out[:, 1].transpose(2, 0, 1)


def _split_sums(S: Array) -> tuple[Array, Array, Array]:
    """For ``S (n_bins, ...)`` (bins first), the left and right sums of every split — the sums of bins ≤ k and
    of bins > k for k < n_bins − 1, the right ones summed from the right (never total − left, which cancels
    in float32) — and the total.

    Running sums by a scan over the bins: one addition per bin and element, in a fixed order, so a sum rounds
    alike batched or not. ``cumsum`` (a window reduction on CPU) and ``sum``, like any reduction or product,
    round with the batch's shape under ``vmap``, and near-tied splits changed with them: a forest's run in a
    study depended on the runs beside it."""
    step = lambda acc, x: (acc + x, acc + x)  # noqa: E731
    total, left = jax.lax.scan(step, jnp.zeros_like(S[0]), S)
    _, right = jax.lax.scan(step, jnp.zeros_like(S[0]), S, reverse=True)
    return left[:-1], right[1:], total


def _leaf_sums(b: _Binned, node: Array, v: Array, leaves: int) -> Array:
    if b.cell is not None:
        return jax.ops.segment_sum(v, node, num_segments=leaves)
    return jnp.matmul(v, (node[:, None] == jnp.arange(leaves)[None, :]).astype(v.dtype), precision="highest")


def _grow(b: _Binned, g: Array, h: Array, depth: int, n_bins: int, l2, min_child_weight,
          offered: list[Array] | None = None, oblivious: bool = True,
          sorted_from: int | None = None) -> tuple[Array, Array, Array]:
    """One tree on gradients ``g`` and hessians ``h``, grown level by level. A split's score is the
    second-order gain (zero in a node whose lighter child weighs less than ``min_child_weight``).
    Oblivious: one (feature, threshold) per level, maximising the gain summed over its nodes. Otherwise
    each node takes its own best split, and a node with no positive gain does not split; ``offered``, one
    ``(2**level, k)`` array per level, lists the features offered to each node (ascending). Returns ``feature`` and
    ``threshold`` ``(2**depth − 1,)`` (node k of level l at ``2**l − 1 + k``; a row goes right iff its bin
    exceeds the threshold) and each row's leaf ``(n,)``.

    Level-wise trees search their levels from ``sorted_from`` on (default: ``_sorted_from``'s cost rule) on
    rows sorted by node and bin instead of histograms (``_sorted_splits``): the same candidate splits and
    gains, at a cost that follows the rows, not the nodes times the bins."""
    n, d = b.bins.shape
    node = jnp.zeros((n,), jnp.int32)
    feats, thrs = [], []
    if oblivious or b.cell is None:  # (sorted search measured on CPU only, where histograms are segment sums)
        sorted_from = depth
    elif sorted_from is None:
        sorted_from = _sorted_from(n, d, d if offered is None else offered[0].shape[1], n_bins, depth)
    for level in range(depth):
        m = 2 ** level
        features = None if offered is None else offered[level]
        if level >= sorted_from:
            if level == sorted_from:
                lists = _sorted_lists(b.bins, node, m, n_bins)
            f_idx, t_idx = _sorted_splits(lists, b.bins, node, g, h, m, n_bins, l2, min_child_weight, features)
        else:
            f_idx, t_idx = _histogram_splits(b, node, g, h, m, n_bins, l2, min_child_weight, features, oblivious)
        feats.append(f_idx)
        thrs.append(t_idx)
        right = _goes_right(b.bins, f_idx, t_idx, node)
        node = node + right * m
        if sorted_from <= level < depth - 1:
            lists = _partition(lists, right)
    return jnp.concatenate(feats).astype(jnp.int32), jnp.concatenate(thrs).astype(jnp.int32), node


def _histogram_splits(b: _Binned, node: Array, g: Array, h: Array, m: int, n_bins: int, l2, min_child_weight,
                      features: Array | None, oblivious: bool) -> tuple[Array, Array]:
    """One level's ``(m,)`` features and thresholds from gradient and hessian histograms of its nodes."""
    n = node.shape[0]
    if m > n:  # more nodes than rows: histograms of the occupied nodes only, in slots 0 … n − 1
        occupied = jax.ops.segment_sum(jnp.ones_like(node), node, num_segments=m) > 0
        position = jnp.nonzero(occupied, size=n, fill_value=m)[0]  # each slot's node (m: an unused slot)
        G, H = _sums(b, (jnp.cumsum(occupied) - 1)[node], g, h, n, n_bins)
        features = None if features is None else features[jnp.minimum(position, m - 1)]
    else:
        position = jnp.arange(m)
        G, H = _sums(b, node, g, h, m, n_bins)
    if oblivious:  # (an empty node's gains are 0, so the unlisted nodes change no sum)
        summed = _ordered_sum(jnp.moveaxis(_gains(G, H, l2, min_child_weight), -1, 0))  # (n_bins − 1, d)
        best = _first_argmax(summed.T.reshape(-1))
        return jnp.full((m,), best // (n_bins - 1)), jnp.full((m,), best % (n_bins - 1))
    # a node not listed (empty) does not split
    best, top = _best_splits(G, H, l2, min_child_weight, features)
    f_idx = jnp.zeros((m,), jnp.int32).at[position].set(jnp.where(top > 0, best // (n_bins - 1), 0), mode="drop")
    t_idx = jnp.full((m,), n_bins - 1).at[position].set(jnp.where(top > 0, best % (n_bins - 1), n_bins - 1),
                                                        mode="drop")
    return f_idx, t_idx


class _Lists(NamedTuple):
    """Each feature's training rows sorted by node, then bin, then row: ``rows (d, n)``; every node holds the
    same positions ``lo … hi`` in all of them, given per position (``(n,)`` each)."""

    rows: Array
    lo: Array
    hi: Array


def _sorted_from(n: int, d: int, k: int, n_bins: int, depth: int) -> int:
    """The first level searched on sorted rows: where a level's histograms (``min(2**l, n) · k · n_bins``
    cells, ``k`` features offered to a node) cost more than a sorted pass (about ``n · d · log2 n``, with a
    constant measured on CPU); ``depth`` (never) when no level qualifies or the sort key would overflow
    int32."""
    for level in range(depth):
        if min(2 ** level, n) * k * n_bins >= _SORTED_COST * n * d * max(1.0, math.log2(n)) \
                and min(2 ** level, n) * n_bins * n < 2 ** 31:
            return level
    return depth


# Measured on CPU (100 trees, depth 10, 50 features), the fastest first sorted level: 3 at 100 rows, 6 at
# 1,000, 8 at 3,000, none at 10,000.
_SORTED_COST = 0.4


def _sorted_lists(bins: Array, node: Array, m: int, n_bins: int) -> _Lists:
    """The rows sorted by ``(node rank, bin, row)`` for each feature, by one sort of a packed int32 key (a
    one-operand sort; an argsort with its index operand was ~7× slower on CPU)."""
    n, d = bins.shape
    occupied = jax.ops.segment_sum(jnp.ones_like(node), node, num_segments=m) > 0
    rank = (jnp.cumsum(occupied) - 1)[node]  # each row's node's rank among the occupied nodes: < n
    key = (rank[None, :] * n_bins + bins.T) * n + jnp.arange(n, dtype=jnp.int32)[None, :]
    rows = jax.lax.sort(key, dimension=1) % n
    at = rank[rows[0]]
    idx = jnp.arange(n)
    first = jnp.concatenate([jnp.ones((1,), bool), at[1:] != at[:-1]])
    last = jnp.concatenate([at[1:] != at[:-1], jnp.ones((1,), bool)])
    lo = jax.lax.cummax(jnp.where(first, idx, 0))
    hi = jax.lax.cummin(jnp.where(last, idx, n - 1), reverse=True)
    return _Lists(rows.astype(jnp.int32), lo.astype(jnp.int32), hi.astype(jnp.int32))


def _running_sums(v: Array, lo: Array, hi: Array) -> tuple[Array, Array]:
    """Inclusive running sums of ``v (..., n)`` along its last axis within each position's node ``lo … hi``,
    from the left and from the right. Doubling steps (Hillis–Steele), as many as the largest node needs,
    each a whole-array elementwise add in a loop step of its own: every sum adds in a fixed order whatever
    the batch, and the loop keeps XLA from fusing the steps into recomputation."""
    idx = jnp.arange(v.shape[-1])
    span = jnp.max(hi - lo)

    def step(carry):
        k, left, right = carry
        s = jnp.left_shift(1, k)
        left = left + jnp.where(jnp.broadcast_to(idx - s >= lo, v.shape), jnp.roll(left, s, axis=-1), 0.0)
        right = right + jnp.where(jnp.broadcast_to(idx + s <= hi, v.shape), jnp.roll(right, -s, axis=-1), 0.0)
        return k + 1, left, right

    _, left, right = jax.lax.while_loop(lambda c: jnp.left_shift(1, c[0]) <= span, step, (0, v, v))
    return left, right


def _sorted_splits(lists: _Lists, bins: Array, node: Array, g: Array, h: Array, m: int, n_bins: int, l2,
                   min_child_weight, features: Array | None) -> tuple[Array, Array]:
    """Each node's best split from its rows sorted by each feature's bin: a candidate threshold is the bin
    of a position that ends a run of one bin within its node, with the node's sums up to it and after it —
    the splits the histograms offer, minus the empty bins' duplicates. Ties go to the smallest
    ``feature · (n_bins − 1) + threshold``, as the histogram search's first argmax. Returns ``(m,)``
    features and thresholds (``n_bins − 1``, no split, where no gain is positive)."""
    rows, lo, hi = lists
    d, n = rows.shape
    B1 = n_bins - 1
    idx = jnp.arange(n)
    fcol = jnp.arange(d)[:, None]
    b = bins[rows, fcol]  # (d, n) each position's bin
    v = jnp.stack([g[rows], h[rows]])
    left, right = _running_sums(v, lo, hi)
    after = jnp.minimum(idx + 1, n - 1)
    inner = idx < hi  # a split after the node's last position leaves its right side empty
    right = jnp.where(inner[None, None, :], right[:, :, after], 0.0)
    (GL, HL), (GR, HR), (Gt, Ht) = left, right, left[:, :, hi]
    gain = _split_gain(GL, HL, GR, HR, Gt, Ht, l2, min_child_weight)
    valid = inner[None, :] & (b != b[:, after])  # ends a run of one bin, not the node's last position
    first = jnp.concatenate([jnp.ones((1,), bool), lo[1:] != lo[:-1]])
    slot = jnp.cumsum(first) - 1  # each position's node's slot, 0 … (occupied nodes − 1)
    at = node[rows[0]]
    slot_node = jnp.full((n,), m, jnp.int32).at[slot].set(at)  # each slot's node (m: an unused slot)
    if features is not None:  # (m, k) features offered to each node
        listed = features[jnp.minimum(slot_node, m - 1)]  # (n, k) each slot's features
        offered = jnp.zeros((n, d), bool).at[jnp.arange(n)[:, None], listed].set(True)
        valid = valid & offered[slot].T
    gain = jnp.where(valid, gain, 0.0)
    # Per position over the features first, then per node over its positions (max and min are exact).
    top = jax.ops.segment_max(jnp.max(gain, axis=0), slot, num_segments=n)
    flat = jnp.where(gain == top[slot][None, :], fcol * B1 + b, d * B1)
    best = jax.ops.segment_min(jnp.min(flat, axis=0), slot, num_segments=n)
    split = top > 0
    f_idx = jnp.zeros((m,), jnp.int32).at[slot_node].set(jnp.where(split, best // B1, 0), mode="drop")
    t_idx = jnp.full((m,), B1, jnp.int32).at[slot_node].set(jnp.where(split, best % B1, B1), mode="drop")
    return f_idx, t_idx


def _partition(lists: _Lists, right: Array) -> _Lists:
    """The lists one level down: within each node its left rows, then its right rows, each in their order
    (a stable partition by integer counts, so exact)."""
    rows, lo, hi = lists
    d, n = rows.shape
    idx = jnp.arange(n)
    goes_left = 1 - right[rows]  # (d, n)
    C = jnp.concatenate([jnp.zeros((d, 1), jnp.int32), jnp.cumsum(goes_left, axis=1, dtype=jnp.int32)], axis=1)
    before = C[:, :n] - C[:, lo]  # left rows before a position in its node
    n_left = C[:, hi + 1] - C[:, lo]
    to = lo[None, :] + jnp.where(goes_left == 1, before, n_left + (idx - lo)[None, :] - before)
    rows = jnp.zeros_like(rows).at[jnp.arange(d)[:, None], to].set(rows)
    n_left = n_left[0]
    in_left = idx < lo + n_left
    return _Lists(rows, jnp.where(in_left, lo, lo + n_left), jnp.where(in_left, lo + n_left - 1, hi))


def _gains(G: Array, H: Array, l2, min_child_weight) -> Array:
    """``(n_bins − 1, d, m)`` gain of each split (bins ≤ k go left) of each feature and node, from ``(n_bins, d,
    m)`` sums."""
    (GL, GR, Gt), (HL, HR, Ht) = (_split_sums(A) for A in (G, H))
    return _split_gain(GL, HL, GR, HR, Gt[None], Ht[None], l2, min_child_weight)


def _split_gain(GL: Array, HL: Array, GR: Array, HR: Array, Gt: Array, Ht: Array, l2, min_child_weight) -> Array:
    """The second-order gain of splits with left, right and node sums ``G``, ``H``; 0 where a child weighs less
    than ``min_child_weight``. Both split searches score by it."""
    gain = GL ** 2 / (HL + l2) + GR ** 2 / (HR + l2) - Gt ** 2 / (Ht + l2)
    # A child of zero hessian with l2 = 0 would give 0 / 0 (and its parent too when both are empty).
    valid = (HL >= min_child_weight) & (HR >= min_child_weight) & (HL + l2 > 0) & (HR + l2 > 0)
    return jnp.where(valid, gain, 0.0)


def _best_splits(G: Array, H: Array, l2, min_child_weight, features: Array | None) -> tuple[Array, Array]:
    """Each node's best split (flat index feature · (n_bins − 1) + threshold; ties to the smallest) and its gain,
    from ``(n_bins, d, m)`` sums; with ``features (m, k)`` (ascending), among those features only, whose
    histograms alone are scanned."""
    B1 = G.shape[0] - 1
    if features is None:
        flat = jnp.arange(G.shape[1])[None, :, None] * B1 + jnp.arange(B1)[:, None, None]  # (B1, d, 1)
    else:
        G, H = (jnp.take_along_axis(A, features.T[None], axis=1) for A in (G, H))
        flat = features.T[None] * B1 + jnp.arange(B1)[:, None, None]  # (B1, k, m)
    gain = _gains(G, H, l2, min_child_weight)
    top = jnp.max(gain, axis=(0, 1), keepdims=True)  # max and min are exact: the same in any order of reduction
    return jnp.min(jnp.where(gain == top, flat, jnp.iinfo(flat.dtype).max), axis=(0, 1)), top[0, 0]


def _ordered_sum(v: Array) -> Array:
    """``Σ v`` over the first axis, added in order (a one-segment scatter): a reduction's order — so its
    rounding — changed with the batch under ``vmap``, and a near-tied split with it."""
    return jax.ops.segment_sum(v, jnp.zeros(v.shape[:1], jnp.int32), num_segments=1)[0]


def _ratio(num: Array, den: Array, empty) -> Array:
    """``num / den``, and ``empty`` where ``den`` is 0 (an empty node or leaf with ``l2 = 0``), never NaN."""
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), empty)


def _first_argmax(x: Array) -> Array:
    """``jnp.argmax`` along the last axis (the first maximum) for arrays without NaN, as a max and a min:
    XLA's CPU argmax is a variadic reduction about 4× slower than the two plain ones."""
    top = jnp.max(x, axis=-1, keepdims=True)
    return jnp.min(jnp.where(x == top, jnp.arange(x.shape[-1]), x.shape[-1] - 1), axis=-1)


def _feature_subsets(key: PRNGKey, depth: int, d: int, k: int) -> list[Array]:
    """For each level, ``(2**level, k)`` features drawn without replacement per node, ascending (those with the
    ``k`` smallest uniforms; ties have probability zero)."""
    u = jax.random.uniform(key, (2 ** depth - 1, d))
    drawn = u <= jnp.sort(u, axis=-1)[:, k - 1:k]
    slot = jnp.where(drawn, jnp.cumsum(drawn, axis=-1) - 1, k)  # a drawn feature's rank among the drawn
    features = jnp.zeros((u.shape[0], k), jnp.int32).at[jnp.arange(u.shape[0])[:, None], slot].set(
        jnp.broadcast_to(jnp.arange(d, dtype=jnp.int32), u.shape), mode="drop")
    return jnp.split(features, [2 ** level - 1 for level in range(1, depth)])


def _goes_right(bins: Array, feature: Array, threshold: Array, node: Array) -> Array:
    f = feature[node]
    return (jnp.take_along_axis(bins, f[:, None], axis=1)[:, 0] > threshold[node]).astype(jnp.int32)


def _window(b: _Binned, rows: Array) -> _Binned:
    """The binned training rows ``rows`` only."""
    return _cells(b.bins[rows], b.cell is not None)


def _leaf_of(bins: Array, feature: Array, threshold: Array) -> Array:
    """Each row's leaf in one tree (``feature``, ``threshold`` ``(2**D − 1,)``, level ``l`` at ``2**l − 1 …``)."""
    node = jnp.zeros((bins.shape[0],), jnp.int32)
    depth = (feature.shape[0] + 1).bit_length() - 1
    for level in range(depth):
        at = slice(2 ** level - 1, 2 ** (level + 1) - 1)
        node = node + _goes_right(bins, feature[at], threshold[at], node) * 2 ** level
    return node


def _predict_sum(params: TreeParams, X: Array) -> Array:
    """``base + Σ_trees leaf[leaf of x]``."""
    bins = bin_features(params.edges, X)

    def one(f, t):
        feature, threshold, leaf = t
        return f + leaf[_leaf_of(bins, feature, threshold)], None

    f, _ = jax.lax.scan(one, jnp.full((X.shape[0],), params.base, X.dtype),
                        (params.feature, params.threshold, params.leaf))
    return f


def _check_shapes(obj) -> None:
    if obj.task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {obj.task!r}")
    for name in ("n_trees", "depth", "n_bins"):
        if not isinstance(getattr(obj, name), int) or getattr(obj, name) < 1:
            raise ValueError(f"{name} must be a positive integer, got {getattr(obj, name)!r}")
    if obj.n_bins < 2:
        raise ValueError(f"n_bins must be at least 2, got {obj.n_bins}")
    if obj.n_trees * 2 ** obj.depth > _MAX_NODES:  # every node of every tree is stored (fixed shapes)
        raise ValueError(f"{type(obj).__name__}(n_trees={obj.n_trees}, depth={obj.depth}) would store "
                         f"{obj.n_trees} × 2**{obj.depth} nodes ({12 * obj.n_trees * 2 ** obj.depth / 1e9:.3g} GB): "
                         f"trees have fixed shapes, so every node of every level is kept; use a depth of at most "
                         f"{(_MAX_NODES // obj.n_trees).bit_length() - 1} for {obj.n_trees} trees")


_MAX_NODES = 2 ** 30  # 12 GB of splits and leaves: 100 trees of depth 23


@dataclasses.dataclass(frozen=True)
class GradientBoostedTrees:
    """Boosted oblivious trees (squared loss for regression, logistic loss for classification).

    Attributes
    ----------
    n_trees, depth, n_bins : static shapes. 255 bins, as scikit-learn's and LightGBM's defaults: a target that
        turns within a sliver of a feature's range (Friedman #3 near ``x0 = 0``) needs them, and a split
        costs the same per row whatever the number of bins.
    learning_rate : shrinkage of every tree (sweepable).
    split_rows : with more training rows than this (static), the bin edges and each tree's splits come from
        a window of ``split_rows`` rows, and the leaf values still from every row. The windows run in turn
        through one random order of the positive-weight rows (drawn from the fit's key), so every such row
        is used about equally often, all of them in every tree when they fit in one window, and a tree
        costs about the same at 400k rows as at ``split_rows``. ``None`` always scores every row.
    l2 : L2 penalty on leaf values, in units of the hessian (the row weight for squared loss).
    min_child_weight : a split whose lighter child has less hessian weight than this in some node
        contributes no gain there.
    task : ``"regression"`` or ``"classification"`` (then ``predict`` gives P(y = 1 | x)).
    """

    n_trees: int = 200
    depth: int = 4
    n_bins: int = 255
    learning_rate: float = hyper_field(0.1)
    l2: float = hyper_field(1.0)
    min_child_weight: float = hyper_field(1.0)
    task: str = "regression"
    split_rows: int | None = 65_536

    def __post_init__(self):
        _check_shapes(self)
        if self.split_rows is not None and (not isinstance(self.split_rows, int) or self.split_rows < 1):
            raise ValueError(f"split_rows must be a positive integer or None, got {self.split_rows!r}")

    def hyper(self) -> dict[str, Array]:
        return {k: jnp.asarray(getattr(self, k), jnp.float32) for k in ("learning_rate", "l2", "min_child_weight")}

    def fit(self, key: PRNGKey, X: Array, y: Array, weight: Array, hyper: Hyper | None = None) -> TreeParams:
        check_xyw(X, y, weight)
        hyper = self.hyper() if hyper is None else hyper
        lr, l2, mcw = hyper["learning_rate"], hyper["l2"], hyper["min_child_weight"]
        n = X.shape[0]
        windowed = self.split_rows is not None and self.split_rows < n
        if windowed:
            order, count = positive_first(key, weight)
            first, mask = window(order, count, 0, self.split_rows)
            mask = mask.astype(X.dtype)  # fewer positive rows than a window
            edges = quantile_edges(X[first], weight[first] * mask, self.n_bins)
        else:
            edges = quantile_edges(X, weight, self.n_bins)
        b = _binned(X, edges)
        mean = _ordered_sum(weight * y) / jnp.maximum(_ordered_sum(weight), 1e-12)
        classify = self.task == "classification"
        if classify:
            mean = jnp.clip(mean, 1e-6, 1 - 1e-6)
            base = jnp.log(mean) - jnp.log1p(-mean)
        else:
            base = mean

        def tree(f, t):
            if classify:
                p = jax.nn.sigmoid(f)
                g, h = weight * (p - y), weight * p * (1 - p)
            else:
                g, h = weight * (f - y), weight
            if windowed:
                rows, _ = window(order, count, t, self.split_rows)
                feature, threshold, _ = _grow(_window(b, rows), g[rows] * mask, h[rows] * mask,
                                              self.depth, self.n_bins, l2, mcw)
                node = _leaf_of(b.bins, feature, threshold)
            else:
                feature, threshold, node = _grow(b, g, h, self.depth, self.n_bins, l2, mcw)
            leaves = 2 ** self.depth
            leaf = _ratio(-lr * _leaf_sums(b, node, g, leaves), _leaf_sums(b, node, h, leaves) + l2, 0.0)
            return f + leaf[node], (feature, threshold, leaf)

        _, (feature, threshold, leaf) = jax.lax.scan(tree, jnp.full(y.shape, base, X.dtype),
                                                     jnp.arange(self.n_trees))
        return TreeParams(edges, feature, threshold, leaf, base)

    def predict(self, params: TreeParams, X: Array) -> Array:
        f = _predict_sum(params, X)
        return jax.nn.sigmoid(f) if self.task == "classification" else f


@dataclasses.dataclass(frozen=True)
class RandomForest:
    """Bagged trees, grown level-wise (each node its own split): each tree sees the sample weights times
    Poisson(1) counts and, at each node, a random subset of ``max_features`` of the features; its leaves are weighted means of ``y`` shrunk
    towards the tree's mean by ``l2`` units of weight (an empty leaf predicts that mean). The forest
    averages its trees (for classification the mean of 0/1 labels: a probability).

    Attributes
    ----------
    n_trees, depth, n_bins : static shapes.
    max_features : share of the features offered at each node (static; at least one; 1.0 as
        scikit-learn's regressor).
    min_child_weight : as for boosting (sweepable).
    l2 : leaf shrinkage towards the tree's mean, in units of row weight (sweepable).
    task : ``"regression"`` or ``"classification"``.
    """

    n_trees: int = 100
    depth: int = 10
    n_bins: int = 64
    max_features: float = 1.0
    min_child_weight: float = hyper_field(1.0)
    l2: float = hyper_field(0.01)
    task: str = "regression"

    def __post_init__(self):
        _check_shapes(self)
        if not 0.0 < self.max_features <= 1.0:
            raise ValueError(f"max_features must be a share in (0, 1], got {self.max_features!r}")

    def hyper(self) -> dict[str, Array]:
        return {k: jnp.asarray(getattr(self, k), jnp.float32) for k in ("min_child_weight", "l2")}

    def fit(self, key: PRNGKey, X: Array, y: Array, weight: Array, hyper: Hyper | None = None) -> TreeParams:
        check_xyw(X, y, weight)
        hyper = self.hyper() if hyper is None else hyper
        l2, mcw = hyper["l2"], hyper["min_child_weight"]
        n, d = X.shape
        edges = quantile_edges(X, weight, self.n_bins)
        b = _binned(X, edges)
        k = max(1, int(round(self.max_features * d)))
        leaves = 2 ** self.depth

        def tree(_, key_t):
            k_w, k_f = jax.random.split(key_t)
            w = weight * jax.random.poisson(k_w, 1.0, (n,)).astype(X.dtype)
            offered = None if k == d else _feature_subsets(k_f, self.depth, d, k)
            total = jnp.maximum(_ordered_sum(w), 1e-12)
            mean = _ordered_sum(w * y) / total
            feature, threshold, node = _grow(b, -w * (y - mean), w, self.depth, self.n_bins, l2, mcw, offered,
                                             oblivious=False)
            leaf = _ratio(_leaf_sums(b, node, w * y, leaves) + l2 * mean, _leaf_sums(b, node, w, leaves) + l2, mean)
            return None, (feature, threshold, leaf / self.n_trees)

        _, (feature, threshold, leaf) = jax.lax.scan(tree, None, jax.random.split(key, self.n_trees))
        return TreeParams(edges, feature, threshold, leaf, jnp.zeros((), X.dtype))

    def predict(self, params: TreeParams, X: Array) -> Array:
        return _predict_sum(params, X)
