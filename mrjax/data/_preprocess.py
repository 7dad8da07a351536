"""The one preprocessing step before any learner: label-free feature standardisation, then the
preference labels put on the gold scale. The router fit and the Bayesian model both call it."""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from mrjax._typing import Array
from mrjax.data._dataset import Dataset, Standardizer, fit_standardizer, standardize
from mrjax.data._scale import _scale


class Preprocessed(NamedTuple):
    """A dataset ready for the learners, and what was done to it.

    Attributes
    ----------
    data : Dataset with standardised features and preference labels times ``scale_constant``.
    standardizer : the fitted Standardizer (apply it to new queries).
    scale_constant : () the constant ``c`` applied to the preference labels.
    scale_degenerate : () bool, a source was (near-)constant and ``c = 1`` was used instead.
    """

    data: Dataset
    standardizer: Standardizer
    scale_constant: Array
    scale_degenerate: Array


def preprocess(data: Dataset, standardize_how: bool | str = True, scale: str = "variance") -> Preprocessed:
    """Standardise the features (``True`` per feature, ``"common"`` one scale, ``False`` none; weighted
    moments of all rows) and rescale the preference labels (``data.scale_constant``'s method)."""
    t, w = data.is_gold, data.weight
    std = fit_standardizer(data.features, w, standardize_how)
    X = standardize(std, data.features)
    c, degenerate = _scale(data, scale, 512)
    o = jnp.where(t > 0.5, data.label, c * data.label)
    return Preprocessed(Dataset(X, t, o, w), std, c, degenerate)
