"""Eager argument checks shared by every layer: one message per kind of mistake, naming the argument.

Each check takes the argument's name first and returns the validated value (converted to a
plain Python number where that is what the caller stores), so constructors can write
``self.level = unit_interval("level", level)``. They run at the user-facing boundary and
in config constructors, never inside traced code.
"""
from __future__ import annotations

import numbers
from typing import Any, Iterable


def _real(name: str, value: Any) -> float:
    if getattr(value, "ndim", None) == 0 and getattr(getattr(value, "dtype", None), "kind", "") in "fiu":
        value = value.item()  # a 0-d NumPy or concrete JAX scalar
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    return float(value)


def unit_interval(name: str, value: Any) -> float:
    """A number strictly between 0 and 1 (a probability, a level); NaN is rejected."""
    v = _real(name, value)
    if not 0.0 < v < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return v


def finite(name: str, value: Any, low: float | None = None, strict: bool = False) -> float:
    """A finite real number, at least ``low`` (above it if ``strict``) when given."""
    v = _real(name, value)
    if not (v == v and abs(v) != float("inf")):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (v <= low if strict else v < low):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low}, got {value!r}")
    return v


def integer(name: str, value: Any, low: int | None = None) -> int:
    """An integer (an integral float is not accepted: ``2.5`` folds is a mistake, so is ``2.0``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    v = int(value)
    if low is not None and v < low:
        raise ValueError(f"{name} must be at least {low}, got {v}")
    return v


def choice(name: str, value: Any, options: Iterable) -> Any:
    """One of ``options`` (compared with ``==``; unhashable values are rejected cleanly)."""
    options = tuple(options)
    try:
        ok = any(type(value) is type(o) and value == o for o in options)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value
