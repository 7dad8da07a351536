import os

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

# Real data (RouteLLM's evaluations and the nine-model set): $MRJAX_DATA, by default ../shared/data
# beside this checkout. Tests that need it skip with the path in their reason (shown by -rs).
SHARED_DATA = os.environ.get("MRJAX_DATA") or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def labelled_frame(n=240, d=4, seed=0):
    """A small two-source table: features ``x0 …`` (indexed ``row0 …``), labels, and which rows are gold (the
    first quarter); preference labels are ``0.7 ψ + 0.3`` plus noise."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    gold = np.zeros(n, bool)
    gold[: n // 4] = True
    psi = X[:, 0] - 0.5 * X[:, 1]
    label = np.where(gold, psi, 0.7 * psi + 0.3) + 0.1 * rng.normal(size=n)
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(d)], index=[f"row{i}" for i in range(n)]), label, gold
