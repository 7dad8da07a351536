"""The pooled gold + preference dataset and its eager validation."""
from __future__ import annotations

from typing import NamedTuple, Sequence

import jax.numpy as jnp
import numpy as np

from mrjax._typing import Array, ArrayLike


class Dataset(NamedTuple):
    """Pooled gold-standard and preference data (a pytree).

    Attributes
    ----------
    features : (n, d) float array
        Query features (e.g. principal components of an embedding).
    is_gold : (n,) float array
        The treatment: 1.0 for a gold-standard label, 0.0 for a preference label.
    label : (n,) float array
        The observed outcome ``o``: the gold gain ``r`` where ``is_gold`` is 1, the
        preference gain ``y`` where it is 0.
    weight : (n,) float array
        Non-negative sample weights (1 by default; bootstrap draws replace them).
    """

    features: Array
    is_gold: Array
    label: Array
    weight: Array

    @property
    def n_gold(self) -> int:
        return int(np.asarray(self.is_gold).sum())

    @property
    def n_preference(self) -> int:
        return int(self.is_gold.shape[0] - np.asarray(self.is_gold).sum())


def _as_float(name: str, value: ArrayLike, ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name}: could not convert to numbers ({err})") from None
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name}: expected numbers, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        want = "(n, d)" if ndim == 2 else "(n,)"
        raise ValueError(f"{name}: expected shape {want}, got {arr.shape}")
    return arr.astype(np.float64)


def _check_finite(name: str, arr: np.ndarray, columns: Sequence[str] | None = None, dtype=np.float32) -> None:
    """Finite in the working dtype (float32 by default): a value that overflows the cast counts as inf."""
    with np.errstate(over="ignore", invalid="ignore"):
        cast = np.asarray(arr).astype(dtype)
    bad = ~np.isfinite(cast)
    if bad.any():
        rows = np.nonzero(bad.any(axis=1) if cast.ndim == 2 else bad)[0]
        where = f"row {rows[0]}"
        first = (rows[0], int(np.nonzero(bad[rows[0]])[0][0])) if cast.ndim == 2 else (rows[0],)
        if cast.ndim == 2:
            col_name = columns[first[1]] if columns is not None else f"column {first[1]}"
            where += f", {col_name!s}"
        value = np.asarray(arr)[first]
        why = f" (overflows {np.dtype(dtype).name})" if np.isfinite(value) else ""
        raise ValueError(
            f"{name}: {int(bad.sum())} non-finite value(s) (NaN or inf) in {np.dtype(dtype).name}; first at {where}: "
            f"{float(value)!r}{why}"
        )


def check_weight(name: str, weight: ArrayLike, n: int) -> np.ndarray:
    """Validate a weight vector eagerly: shape ``(n,)``, finite, non-negative, not all zero."""
    w = _as_float(name, weight, 1)
    if w.shape[0] != n:
        raise ValueError(f"{name}: expected length {n}, got {w.shape[0]}")
    _check_finite(name, w)
    if (w < 0).any():
        i = int(np.nonzero(w < 0)[0][0])
        raise ValueError(f"{name}: weights must be non-negative; row {i} has {w[i]!r}")
    if not (w > 0).any():
        raise ValueError(f"{name}: all weights are zero")
    return w


def from_arrays(
    features: ArrayLike,
    is_gold: ArrayLike,
    label: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    feature_names: Sequence[str] | None = None,
    dtype=jnp.float32,
) -> Dataset:
    """Build a validated :class:`Dataset` from pooled arrays.

    Parameters
    ----------
    features : (n, d) array
    is_gold : (n,) array of {0, 1} or bool
        1 where the row carries a gold-standard label.
    label : (n,) array
    weight : (n,) array, optional
        Non-negative sample weights; ones by default.
    feature_names : sequence of str, optional
        Used in error messages.

    Raises
    ------
    ValueError
        On non-finite values (naming row and column), mismatched lengths, a
        source indicator outside {0, 1}, an empty gold or preference set, or bad weights.
    """
    x = _as_float("features", features, 2)
    t = _as_float("is_gold", is_gold, 1)
    o = _as_float("label", label, 1)
    n = x.shape[0]
    for name, arr in (("is_gold", t), ("label", o)):
        if arr.shape[0] != n:
            raise ValueError(f"{name}: expected length {n} (rows of features), got {arr.shape[0]}")
    if n == 0:
        raise ValueError("features: the dataset is empty")
    _check_finite("features", x, feature_names, dtype)
    _check_finite("is_gold", t, dtype=dtype)
    _check_finite("label", o, dtype=dtype)
    if not np.isin(t, (0.0, 1.0)).all():
        i = int(np.nonzero(~np.isin(t, (0.0, 1.0)))[0][0])
        raise ValueError(f"is_gold: values must be 0 or 1; row {i} has {t[i]!r}")
    if not (t == 1).any():
        raise ValueError("is_gold: the gold-standard set is empty (no row has is_gold == 1)")
    if not (t == 0).any():
        raise ValueError("is_gold: the preference set is empty (no row has is_gold == 0)")
    w = np.ones(n) if weight is None else check_weight("weight", weight, n)
    if not (w[t == 1] > 0).any():
        raise ValueError("weight: every gold-standard row has zero weight")
    if not (w[t == 0] > 0).any():
        raise ValueError("weight: every preference row has zero weight")
    return Dataset(
        jnp.asarray(x, dtype), jnp.asarray(t, dtype), jnp.asarray(o, dtype), jnp.asarray(w, dtype)
    )


def from_sources(
    gold_features: ArrayLike,
    gold_label: ArrayLike,
    preference_features: ArrayLike,
    preference_label: ArrayLike,
    gold_weight: ArrayLike | None = None,
    preference_weight: ArrayLike | None = None,
    **kwargs,
) -> Dataset:
    """Build a :class:`Dataset` from separate gold ``(X_G, r)`` and preference ``(X_P, y)`` sets.

    Gold rows come first in the pooled order.
    """
    xg = _as_float("gold_features", gold_features, 2)
    xp = _as_float("preference_features", preference_features, 2)
    if xg.shape[0] == 0:
        raise ValueError("gold_features: the gold-standard set is empty")
    if xp.shape[0] == 0:
        raise ValueError("preference_features: the preference set is empty")
    if xg.shape[1] != xp.shape[1]:
        raise ValueError(
            f"gold_features has {xg.shape[1]} columns but preference_features has {xp.shape[1]}"
        )
    r = _as_float("gold_label", gold_label, 1)
    y = _as_float("preference_label", preference_label, 1)
    if r.shape[0] != xg.shape[0]:
        raise ValueError(f"gold_label: expected length {xg.shape[0]}, got {r.shape[0]}")
    if y.shape[0] != xp.shape[0]:
        raise ValueError(f"preference_label: expected length {xp.shape[0]}, got {y.shape[0]}")
    wg = np.ones(xg.shape[0]) if gold_weight is None else check_weight("gold_weight", gold_weight, xg.shape[0])
    wp = (
        np.ones(xp.shape[0])
        if preference_weight is None
        else check_weight("preference_weight", preference_weight, xp.shape[0])
    )
    for name, arr in (("gold_features", xg), ("gold_label", r), ("preference_features", xp), ("preference_label", y)):
        _check_finite(name, arr, kwargs.get("feature_names"))
    t = np.concatenate([np.ones(xg.shape[0]), np.zeros(xp.shape[0])])
    return from_arrays(
        np.vstack([xg, xp]), t, np.concatenate([r, y]), np.concatenate([wg, wp]), **kwargs
    )


def from_dataframe(
    frame,
    feature_columns: Sequence[str],
    label_column: str,
    source_column: str,
    *,
    gold_value=1,
    preference_value=None,
    weight_column: str | None = None,
) -> Dataset:
    """Build a :class:`Dataset` from one pandas DataFrame of pooled rows.

    Parameters
    ----------
    frame : pandas.DataFrame
    feature_columns : list of str
        Columns holding the features, in order.
    label_column : str
        The observed label (gold gain on gold rows, preference gain on preference rows).
    source_column : str
        Which source labelled the row. It must hold exactly two values: ``gold_value`` (gold rows)
        and ``preference_value`` (preference rows; by default the one other value found).
        Anything else — a third value, a stray ``"Preference "`` — is an error naming the column
        and the values it holds.
    weight_column : str, optional
    """
    import pandas as pd  # the data-I/O layer is the only place pandas enters

    dup = sorted({str(c) for c in frame.columns if list(frame.columns).count(c) > 1})
    if dup:
        raise ValueError(f"the DataFrame has duplicated column names: {dup}")
    missing = [c for c in [*feature_columns, label_column, source_column, weight_column] if c is not None and c not in frame.columns]
    if missing:
        raise ValueError(f"columns not in the DataFrame: {missing}; it has {list(frame.columns)}")
    if len(feature_columns) == 0:
        raise ValueError("feature_columns: at least one feature column is needed")
    for c in [*feature_columns, label_column] + ([weight_column] if weight_column else []):
        if not pd.api.types.is_numeric_dtype(frame[c]):
            raise ValueError(f"column {c!r}: expected numbers, got dtype {frame[c].dtype}")
    source = frame[source_column]
    found = list(pd.unique(source))
    if gold_value not in found:
        raise ValueError(f"column {source_column!r}: no row equals gold_value={gold_value!r}; it holds {found[:10]}")
    others = [v for v in found if v != gold_value]
    if preference_value is None:
        if len(others) != 1:
            raise ValueError(f"column {source_column!r}: expected exactly two values (gold_value={gold_value!r} and "
                             f"one preference value), found {found[:10]}; pass preference_value to say which")
    elif others != [preference_value]:
        extra = [v for v in others if v != preference_value]
        raise ValueError(f"column {source_column!r}: values other than gold_value={gold_value!r} and "
                         f"preference_value={preference_value!r}: {extra[:10]}" if extra else
                         f"column {source_column!r}: no row equals preference_value={preference_value!r}; it holds {found[:10]}")
    t = (source == gold_value).to_numpy(dtype=np.float64)
    return from_arrays(
        frame[list(feature_columns)].to_numpy(dtype=np.float64),
        t,
        frame[label_column].to_numpy(dtype=np.float64),
        None if weight_column is None else frame[weight_column].to_numpy(dtype=np.float64),
        feature_names=[repr(c) for c in feature_columns],
    )


class Standardizer(NamedTuple):
    """Feature centring and scaling, fitted label-free on the rows it is given.

    Attributes
    ----------
    mean : (d,) array
    scale : (d,) array
    """

    mean: Array
    scale: Array


def check_standardize(how) -> None:
    """Raise a clear error unless ``how`` is a standardisation mode of :func:`fit_standardizer`."""
    if how not in (True, False, "common"):
        raise ValueError(f"standardize must be True, False or 'common', got {how!r}")


def fit_standardizer(features: Array, weight: Array, how: bool | str = True) -> Standardizer:
    """Weighted mean and standard deviation of each feature (scale 1 for constant columns).

    ``how="common"`` centres each feature but divides all by one scale, the root mean
    variance, so the features keep their relative scales: for coordinates whose variance
    is information (principal components of embeddings, where the leading directions
    carry the topic and the trailing ones mostly noise), per-feature scaling would
    amplify the noise directions to equal weight. ``how=False`` gives the identity.
    """
    check_standardize(how)
    d = features.shape[1]
    if not how:
        return Standardizer(jnp.zeros((d,), features.dtype), jnp.ones((d,), features.dtype))
    # Moments of the features divided by a power of two near their magnitude (per column; one for all
    # columns with "common"): exact in floating point, so the result is bit-identical to the plain
    # moments wherever those do not overflow or underflow, and scale-free where they would
    # (features × 1e±30 in float32: squares leave the representable range).
    magnitude = jnp.max(jnp.abs(features), axis=0)
    if how == "common":
        magnitude = jnp.full_like(magnitude, jnp.max(magnitude))
    _, exponent = jnp.frexp(magnitude)
    unit = jnp.ldexp(jnp.ones_like(magnitude), exponent)
    x = features / unit[None, :]
    w = weight / jnp.sum(weight)
    mean = jnp.matmul(w, x, precision="highest")
    var = jnp.matmul(w, (x - mean[None, :]) ** 2, precision="highest")
    if how == "common":
        var = jnp.full_like(var, jnp.mean(var))
    scale = jnp.where(var > 0, jnp.sqrt(var) * unit, 1.0)
    return Standardizer(mean * unit, scale)


def standardize(std: Standardizer, features: Array) -> Array:
    """Apply a fitted :class:`Standardizer` to ``features`` of shape ``(n, d)``."""
    return (features - std.mean[None, :]) / std.scale[None, :]
