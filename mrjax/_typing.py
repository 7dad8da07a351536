"""Type aliases used across mrjax."""
from __future__ import annotations

from typing import Any, Mapping

import jax

Array = jax.Array
PRNGKey = jax.Array
ArrayLike = Any
Hyper = Mapping[str, Array]
