"""A real-gold routing benchmark among nine models, with prices (``ulab-uiuc/LLMRouter``, MIT).

Reads a user's copy of the nine-model set (as laid out in ``shared/data/llmrouter-9models``):
per-question 0/1 correctness of nine open models, their prices, the source's train/test split and
all-MiniLM-L6-v2 question embeddings.

* Gold score of model ``k`` on a question: ``1[k answered correctly]`` (exact, from answer keys).
* Preference score: a simulated judge that sees answers, not answer keys, and favours larger models:
  ``P(judge scores k's answer 1) = sigmoid(a·(2·correct_k − 1) + b·z_k + c·z_k·ℓ)``, ``z_k`` the
  standardised log parameter count of model ``k`` and ``ℓ`` the standardised log question length
  (the favour grows with the question's length). ``a``, ``b``, ``c`` and the seed are arguments.
* Cost of a question for model ``k``: ``price_k × tokens`` (USD; input and output priced alike in
  the source), with ``tokens`` estimated as the question's characters / 4.

This module does file I/O and uses NumPy's seeded generator; it never runs inside traced code.
"""
from __future__ import annotations

import hashlib
import os
from typing import NamedTuple

import numpy as np

CHARS_PER_TOKEN = 4.0  # the usual rule of thumb for English text; the source has no token counts


class LLMRouterPool(NamedTuple):
    """Every question of the nine-model set.

    Attributes
    ----------
    embedding : (N, 384) float32 question embeddings.
    correct : (N, K) float32 gold scores, 1 where model ``k`` answered correctly.
    preference : (N, K) float32 the simulated judge's 0/1 scores.
    is_test : (N,) bool, the source's test rows.
    cluster : (N,) int32, the source's task cluster of a train row (−1 on test rows).
    tokens : (N,) float32 estimated tokens per question.
    models : tuple of K model names; size : (K,) float32 parameters in billions;
    price : (K,) float32 USD per million tokens.
    """

    embedding: np.ndarray
    correct: np.ndarray
    preference: np.ndarray
    is_test: np.ndarray
    cluster: np.ndarray
    tokens: np.ndarray
    models: tuple
    size: np.ndarray
    price: np.ndarray

    @property
    def cost(self) -> np.ndarray:
        """(N, K) USD per question: ``price_k × tokens / 10⁶``."""
        return self.tokens[:, None] * self.price[None, :] / 1e6


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def load_llmrouter(
    data_dir: str,
    judge_strength: float = 1.0,
    size_bias: float = 1.0,
    length_coef: float = 0.5,
    seed: int = 0,
) -> LLMRouterPool:
    """Load the nine-model set with gold scores, a simulated size-favouring judge and costs.

    Parameters
    ----------
    data_dir : folder holding ``queries.csv.gz``, ``models.csv`` and ``embeddings_minilm.npz``.
    judge_strength, size_bias, length_coef, seed : the judge's ``a``, ``b``, ``c`` and seed.

    Raises
    ------
    FileNotFoundError naming the missing folder or file; ValueError on malformed files or
    embeddings that do not match the questions.
    """
    import pandas as pd

    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"nine-model data folder not found: {data_dir}")
    paths = {name: os.path.join(data_dir, name) for name in ("queries.csv.gz", "models.csv", "embeddings_minilm.npz")}
    for path in paths.values():
        if not os.path.isfile(path):
            raise FileNotFoundError(f"file not found: {path}")
    models = pd.read_csv(paths["models.csv"])
    for col in ("model", "size", "input_price", "output_price"):
        if col not in models.columns:
            raise ValueError(f"{paths['models.csv']}: expected a column {col!r}; it has {list(models.columns)}")
    names = tuple(str(m) for m in models["model"])
    size = models["size"].astype(str).str.rstrip("Bb")
    try:
        size = size.astype(np.float32).to_numpy()
    except ValueError:
        raise ValueError(f"{paths['models.csv']}: column 'size' must read like '7B', got {list(models['size'])}") from None
    if not np.array_equal(models["input_price"].to_numpy(), models["output_price"].to_numpy()):
        raise ValueError(f"{paths['models.csv']}: input and output prices differ; this loader prices tokens alike")
    price = models["input_price"].to_numpy(np.float32)

    frame = pd.read_csv(paths["queries.csv.gz"])
    missing = [c for c in ("split", "cluster_id", "sha256", "question", *names) if c not in frame.columns]
    if missing:
        raise ValueError(f"{paths['queries.csv.gz']}: missing columns {missing}")
    correct = frame[list(names)].to_numpy(np.float32)
    if not np.isin(correct, (0.0, 1.0)).all():
        r, k = (int(v[0]) for v in np.nonzero(~np.isin(correct, (0.0, 1.0))))
        raise ValueError(f"{paths['queries.csv.gz']}: column {names[k]!r} row {r} is {correct[r, k]!r}, expected 0 or 1")
    split = frame["split"].astype(str)
    if not split.isin(("train", "test")).all():
        bad = int(np.nonzero(~split.isin(("train", "test")).to_numpy())[0][0])
        raise ValueError(f"{paths['queries.csv.gz']}: column 'split' row {bad} is {split.iloc[bad]!r}, expected train/test")
    questions = frame["question"].astype(str).tolist()
    ours = np.asarray([hashlib.sha256(q.encode("utf-8")).hexdigest() for q in questions])
    if not np.array_equal(ours, frame["sha256"].astype(str).to_numpy()):
        bad = int(np.nonzero(ours != frame["sha256"].astype(str).to_numpy())[0][0])
        raise ValueError(f"{paths['queries.csv.gz']}: row {bad}'s sha256 is not its question's")
    with np.load(paths["embeddings_minilm.npz"]) as npz:
        emb = npz["embedding"].astype(np.float32)
        sha = npz["sha256"].astype(str)
    if emb.shape[0] != len(frame) or not np.array_equal(sha, ours):
        raise ValueError(f"{paths['embeddings_minilm.npz']}: its rows are not the questions' (count or sha256 differs)")

    length = np.log(np.asarray([len(q) for q in questions], np.float64))
    ell = (length - length.mean()) / length.std()
    logsize = np.log(size.astype(np.float64))
    z = (logsize - logsize.mean()) / logsize.std()
    rng = np.random.default_rng(seed)
    logit = judge_strength * (2.0 * correct - 1.0) + size_bias * z[None, :] + length_coef * z[None, :] * ell[:, None]
    preference = (rng.uniform(size=correct.shape) < _sigmoid(logit)).astype(np.float32)
    tokens = (np.asarray([len(q) for q in questions], np.float32) / CHARS_PER_TOKEN)
    return LLMRouterPool(emb, correct, preference, split.to_numpy() == "test", frame["cluster_id"].to_numpy(np.int32),
                         tokens, names, size, price)
