"""Save and load a fitted router: a JSON manifest and arrays in ``.npz`` files — never pickle.

A saved router is a folder: ``manifest.json`` (format version, versions, the constructor's
arguments as data, feature names, standardisation, diagnostics, and each array's shape, dtype and
SHA-256) and ``arrays.npz`` (the fitted pytree and its diagnostics, by path). ``data.npz`` holds
the training data only when asked for (``keep_data=True``; intervals refit on it). Loading reads
arrays with ``allow_pickle=False`` and rebuilds the fit's structure from the configuration, so a
file can change numbers only — and a changed number fails its checksum.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import importlib
import json
import os
import sys

import numpy as np

FORMAT = "mrjax-router"
FORMAT_VERSION = 2  # 2: a Meta-Router's ψ̂ has its own feature relevance (RouterFit.bias_standardizer)
MANIFEST, ARRAYS, DATA = "manifest.json", "arrays.npz", "data.npz"


class LoadError(ValueError):
    """A saved router that cannot be loaded: missing, from a newer mrjax, or altered."""


def encode(value, where: str = "value"):
    """A constructor argument as JSON data: numbers, strings, tuples and mrjax dataclass values."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return {"tuple": [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, (np.ndarray, np.generic)) or type(value).__module__.startswith("jax"):
        arr = np.asarray(value)
        return {"array": arr.tolist(), "dtype": str(arr.dtype)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        return {"class": f"{cls.__module__}:{cls.__qualname__}",
                "fields": {f.name: encode(getattr(value, f.name), f"{where}.{f.name}")
                           for f in dataclasses.fields(value) if f.init}}
    raise TypeError(f"{where}: cannot save a {type(value).__name__} ({value!r}); a saved router holds numbers, "
                    "strings, tuples and dataclass values only")


def decode(obj, classes: dict):
    """Inverse of :func:`encode`. Classes are looked up in mrjax or in ``classes`` (``"module:name"`` →
    class) only: a manifest cannot make this import or run anything else."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict) and "tuple" in obj:
        return tuple(decode(v, classes) for v in obj["tuple"])
    if isinstance(obj, dict) and "array" in obj:
        return np.asarray(obj["array"], dtype=obj["dtype"])
    if isinstance(obj, dict) and "class" in obj:
        name = obj["class"]
        if name in classes:
            cls = classes[name]
        elif name.startswith("mrjax.") and ":" in name:
            module, qual = name.split(":", 1)
            try:
                cls = getattr(importlib.import_module(module), qual)
            except (ImportError, AttributeError):
                raise LoadError(f"the router uses {name}, which this mrjax does not have") from None
        else:
            raise LoadError(f"the router uses the class {name} from outside mrjax; pass it to load(classes=[...]) "
                            "if you trust it")
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise LoadError(f"{name} is not a dataclass value type")
        return cls(**{k: decode(v, classes) for k, v in obj["fields"].items()})
    raise LoadError(f"manifest: cannot read the value {obj!r}")


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def flatten(tree, prefix: str) -> dict[str, np.ndarray]:
    """``{prefix + path: array}`` for every leaf of a pytree."""
    import jax

    return {prefix + jax.tree_util.keystr(path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def describe(arrays: dict[str, np.ndarray]) -> dict:
    return {k: {"shape": list(a.shape), "dtype": str(a.dtype), "sha256": _digest(a)} for k, a in arrays.items()}


def versions() -> dict:
    """The mrjax, JAX, NumPy and Python versions: recorded in saved routers and every results file."""
    import jax

    from mrjax import __version__

    return {"mrjax": __version__, "jax": jax.__version__, "numpy": np.__version__, "python": sys.version.split()[0]}


def write(folder: str, manifest: dict, arrays: dict[str, np.ndarray], data: dict[str, np.ndarray] | None) -> None:
    """Write a router folder's files into ``folder`` (an empty temporary folder swapped in by the caller)."""
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "versions": versions(),
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                **manifest, "arrays": describe(arrays), "data": None if data is None else describe(data)}
    np.savez(os.path.join(folder, ARRAYS), **arrays)
    if data is not None:
        np.savez(os.path.join(folder, DATA), **data)
    with open(os.path.join(folder, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)


def read_manifest(folder: str) -> dict:
    path = os.path.join(folder, MANIFEST)
    if not os.path.isdir(folder):
        raise LoadError(f"{folder}: no such router folder")
    if not os.path.isfile(path):
        raise LoadError(f"{folder}: not a saved router ({MANIFEST} is missing)")
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise LoadError(f"{path}: cannot read the manifest ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise LoadError(f"{path}: not an mrjax router manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise LoadError(f"{folder}: saved in router format {version!r} by mrjax "
                        f"{manifest.get('versions', {}).get('mrjax', '?')}; this mrjax reads format "
                        f"{FORMAT_VERSION} and older — upgrade mrjax to load it")
    return manifest


def read_arrays(folder: str, name: str, described: dict) -> dict[str, np.ndarray]:
    """The arrays of ``folder/name``, each checked against the manifest's shape, dtype and checksum."""
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise LoadError(f"{folder}: {name} is missing")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise LoadError(f"{path}: cannot read the arrays ({err})") from None
    missing, extra = sorted(set(described) - set(arrays)), sorted(set(arrays) - set(described))
    if missing or extra:
        raise LoadError(f"{path}: arrays do not match the manifest (missing {missing[:5]}, unexpected {extra[:5]})")
    for k, meta in described.items():
        a = arrays[k]
        if list(a.shape) != meta["shape"] or str(a.dtype) != meta["dtype"] or _digest(a) != meta["sha256"]:
            raise LoadError(f"{path}: array {k!r} was altered (its shape, dtype or checksum differs from the "
                            "manifest's)")
    return arrays


def unflatten(template, arrays: dict[str, np.ndarray], prefix: str):
    """The pytree ``template`` (shapes from ``jax.eval_shape``) filled with ``arrays``."""
    import jax
    import jax.numpy as jnp

    def leaf(path, spec):
        k = prefix + jax.tree_util.keystr(path)
        if k not in arrays:
            raise LoadError(f"array {k!r} is missing: the saved router does not match its configuration")
        a = arrays[k]
        if a.shape != spec.shape or a.dtype != spec.dtype:
            raise LoadError(f"array {k!r}: expected {spec.dtype}{list(spec.shape)} for this configuration, "
                            f"got {a.dtype}{list(a.shape)}")
        return jnp.asarray(a)

    return jax.tree_util.tree_map_with_path(leaf, template)
