import os

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

FULL = os.environ.get("MRJAX_FULL") == "1"
SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def pytest_collection_modifyitems(config, items):
    if FULL:
        return
    skip = pytest.mark.skip(reason="slow statistical test; run the full tier with MRJAX_FULL=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
