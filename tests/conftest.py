import os

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

# Real data (RouteLLM's evaluations and the nine-model set): $MRJAX_DATA, by default ../shared/data
# beside this checkout. Tests that need it skip with the path in their reason (shown by -rs).
SHARED_DATA = os.environ.get("MRJAX_DATA") or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
