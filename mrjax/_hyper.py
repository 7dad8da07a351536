"""Static structure apart from numbers: the fields a user may sweep, and the jit key without them.

Configs, methods, learners and designs are frozen dataclasses (hashable, static under ``jax.jit``).
Their sweepable numbers are ``hyper_field``s; :func:`structure` sets those to None, so two values that
differ only in numbers share one compiled program, and the numbers travel as arrays.
"""
from __future__ import annotations

import dataclasses
from typing import Any


def hyper_field(default: float):
    """A dataclass field holding a number a user may sweep: it reaches traced code only through
    ``hyper()`` arrays, and :func:`structure` leaves it out of the static key."""
    return dataclasses.field(default=default, metadata={"hyper": True})


def structure(obj: Any) -> Any:
    """``obj`` (a config, method or learner value) with every sweepable number set to None.

    Two values that differ only in such numbers have equal structures, so a function jitted with
    the structure as its static argument compiles once for both; the numbers travel as the
    ``hyper`` arrays built from the full value. (The structure's own ``hyper()`` is not usable.)
    """
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        return obj
    changes = {}
    for f in dataclasses.fields(obj):
        if not f.init:
            continue
        value = getattr(obj, f.name)
        new = None if f.metadata.get("hyper") else structure(value)
        if new is not value:
            changes[f.name] = new
    return dataclasses.replace(obj, **changes) if changes else obj
