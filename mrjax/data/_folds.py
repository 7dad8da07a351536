"""Cross-fitting folds as fold-id vectors, balanced and stratified by source."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mrjax._typing import Array, PRNGKey


class Folds(NamedTuple):
    """A K-fold partition of ``n`` rows with fixed shapes.

    Attributes
    ----------
    fold_id : (n,) int32 array
        Fold of each row, in ``0..K-1``.
    members : (K, m) int32 array
        Row indices of each fold, ``m = ceil(n / K)``, padded with the sentinel ``n``
        where a fold is one row short. Lets ridge-type learners build every fold's
        Gram matrix in one pass over the data.
    """

    fold_id: Array
    members: Array

    @property
    def n_folds(self) -> int:
        return self.members.shape[0]

    def held_out(self) -> Array:
        """(K, n) booleans: row i is held out in fold k."""
        return self.fold_id[None, :] == jnp.arange(self.n_folds)[:, None]


def make_folds(key: PRNGKey, is_gold: Array, n_folds: int) -> Folds:
    """Random folds, balanced (sizes differ by at most one) and stratified by source.

    Rows are ordered gold first then preference, randomly within each source, and
    dealt round-robin into ``n_folds`` folds, so every fold holds about
    ``n_gold / K`` gold rows.

    Parameters
    ----------
    key : PRNGKey
    is_gold : (n,) array
    n_folds : int (static), at least 2
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2 for cross-fitting, got {n_folds}")
    n = is_gold.shape[0]
    if n < n_folds:
        raise ValueError(f"cannot split {n} rows into {n_folds} folds")
    u = jax.random.uniform(key, (n,))
    order = jnp.argsort((1.0 - is_gold) * 2.0 + u).astype(jnp.int32)
    position = jnp.arange(n, dtype=jnp.int32)
    fold_id = jnp.zeros(n, jnp.int32).at[order].set(position % n_folds)
    m = -(-n // n_folds)
    padded = jnp.concatenate([order, jnp.full(m * n_folds - n, n, jnp.int32)])
    members = padded.reshape(m, n_folds).T
    return Folds(fold_id, members)
