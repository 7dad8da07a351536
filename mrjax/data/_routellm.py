"""Real-gold routing benchmarks from RouteLLM's evaluation files (``lm-sys/RouteLLM``, Apache-2.0).

Reads a user's copy of ``routellm/evals`` (as laid out in ``shared/data/routellm-evals``):
per-question correctness of a weak/alternative model (Mixtral-8x7B-Instruct) and a
strong/primary model (GPT-4-1106-preview), plus all-MiniLM-L6-v2 prompt embeddings.

* Gold gain ``GL = 1[strong correct] − 1[weak correct]`` ∈ {−1, 0, 1} (exact, from answer keys).
* Preference label ``PL`` ∈ {−1, +1}:
  - GSM8K: the real "prefer the longer answer" judge (AlpacaEval's ``longest``);
  - MMLU: a simulated judge, ``P(PL = +1) = sigmoid(a·GL + b[subject] + c·z)``, ``z`` the
    standardised log prompt length, ``b[subject] ~ N(0, s²)`` drawn once per subject.
* Prompts listed in ``contaminated_prompts.jsonl`` are dropped.

This module does file I/O and uses NumPy's seeded generator; it never runs inside traced code.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import NamedTuple

import numpy as np

WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"
BENCHMARKS = ("mmlu", "gsm8k")


class RouteLLMPool(NamedTuple):
    """All usable queries of one benchmark.

    Attributes
    ----------
    embedding : (N, 384) float32 prompt embeddings.
    gold_gain : (N,) float32 GL ∈ {−1, 0, 1}.
    preference_label : (N,) float32 PL ∈ {−1, +1}.
    subject : (N,) int32 subject code (0 for GSM8K).
    weak_correct, strong_correct : (N,) bool.
    n_contaminated : int, rows dropped as contaminated.
    """

    embedding: np.ndarray
    gold_gain: np.ndarray
    preference_label: np.ndarray
    subject: np.ndarray
    weak_correct: np.ndarray
    strong_correct: np.ndarray
    n_contaminated: int


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _bool_column(frame, column, path):
    if column not in frame.columns:
        raise ValueError(f"{path}: expected a column {column!r}; it has {list(frame.columns)}")
    values = frame[column]
    if values.dtype != bool:
        mapped = values.astype(str).str.strip().str.lower().map({"true": True, "false": False})
        if mapped.isna().any():
            bad = int(np.nonzero(mapped.isna().to_numpy())[0][0])
            raise ValueError(f"{path}: column {column!r} row {bad} is {values.iloc[bad]!r}, expected True/False")
        values = mapped
    return values.to_numpy(dtype=bool)


def _contaminated(path):
    if not os.path.isfile(path):
        return set()
    with open(path) as f:
        return {json.loads(line)["eval_prompt"] for line in f if line.strip()}


def load_routellm(
    data_dir: str,
    benchmark: str = "mmlu",
    judge_strength: float = 1.0,
    subject_sd: float = 1.0,
    length_coef: float = 0.5,
    seed: int = 0,
    drop_contaminated: bool = True,
) -> RouteLLMPool:
    """Load one RouteLLM benchmark with gold gains and preference labels.

    Parameters
    ----------
    data_dir : folder holding ``mmlu/``, ``gsm8k/`` and ``embeddings_minilm.npz``.
    benchmark : ``"mmlu"`` or ``"gsm8k"``.
    judge_strength, subject_sd, length_coef, seed : the simulated MMLU judge's ``a``,
        ``s``, ``c`` and seed (unused for GSM8K, whose judge is real).
    drop_contaminated : drop prompts listed in ``contaminated_prompts.jsonl`` (default).

    Raises
    ------
    FileNotFoundError naming the missing folder or file; ValueError on malformed files
    or embeddings that do not match the prompts.
    """
    import pandas as pd

    if benchmark not in BENCHMARKS:
        raise ValueError(f"benchmark must be one of {BENCHMARKS}, got {benchmark!r}")
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"RouteLLM data folder not found: {data_dir}")
    npz_path = os.path.join(data_dir, "embeddings_minilm.npz")
    if not os.path.isfile(npz_path):
        raise FileNotFoundError(f"embeddings file not found: {npz_path}")
    if benchmark == "mmlu":
        folder = os.path.join(data_dir, "mmlu", "responses")
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"MMLU responses folder not found: {folder}")
        files = sorted(f for f in os.listdir(folder) if f.startswith("mmlu_") and f.endswith(".csv"))
        if not files:
            raise FileNotFoundError(f"no mmlu_<subject>.csv files in {folder}")
        frames = []
        for code, name in enumerate(files):
            frame = pd.read_csv(os.path.join(folder, name))
            frames.append(frame.assign(_subject=code, _file=name))
        frame = pd.concat(frames, ignore_index=True)
    else:
        path = os.path.join(data_dir, "gsm8k", "gsm8k_responses.csv")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"GSM8K responses file not found: {path}")
        frame = pd.read_csv(path).assign(_subject=0, _file="gsm8k_responses.csv")
    if "prompt" not in frame.columns:
        raise ValueError(f"{benchmark}: expected a 'prompt' column; it has {list(frame.columns)}")
    weak = _bool_column(frame, WEAK, benchmark)
    strong = _bool_column(frame, STRONG, benchmark)

    with np.load(npz_path) as npz:
        emb = npz[f"{benchmark}_embedding"].astype(np.float32)
        sha = npz[f"{benchmark}_sha256"]
    if emb.shape[0] != len(frame):
        raise ValueError(f"{npz_path}: {emb.shape[0]} {benchmark} embeddings for {len(frame)} prompts")
    prompts = frame["prompt"].astype(str).tolist()
    ours = np.asarray([hashlib.sha256(p.encode("utf-8")).hexdigest() for p in prompts])
    if not np.array_equal(ours, sha):
        bad = int(np.nonzero(ours != sha)[0][0])
        raise ValueError(f"{npz_path}: embedding row {bad} does not belong to prompt row {bad} (sha256 differs)")

    gl = strong.astype(np.float32) - weak.astype(np.float32)
    subject = frame["_subject"].to_numpy(np.int32)
    if benchmark == "gsm8k":
        for col in (f"{WEAK}_response", f"{STRONG}_response"):
            if col not in frame.columns:
                raise ValueError(f"gsm8k: expected a column {col!r}")
        longer = frame[f"{STRONG}_response"].astype(str).str.len().to_numpy() > frame[f"{WEAK}_response"].astype(str).str.len().to_numpy()
        pl = np.where(longer, 1.0, -1.0).astype(np.float32)
    else:
        rng = np.random.default_rng(seed)
        b = rng.normal(0.0, subject_sd, size=subject.max() + 1)
        loglen = np.log(np.asarray([len(p) for p in prompts], np.float64))
        z = (loglen - loglen.mean()) / loglen.std()
        prob = _sigmoid(judge_strength * gl + b[subject] + length_coef * z)
        pl = np.where(rng.uniform(size=len(gl)) < prob, 1.0, -1.0).astype(np.float32)

    dirty = _contaminated(os.path.join(data_dir, benchmark, "contaminated_prompts.jsonl"))
    keep = np.asarray([p not in dirty for p in prompts]) if drop_contaminated else np.ones(len(prompts), bool)
    return RouteLLMPool(emb[keep], gl[keep], pl[keep], subject[keep], weak[keep], strong[keep], int((~keep).sum()))
