"""In-memory models and statistic batches as data, for the chain state (never pickle).

A numpy family's fitted model (``GaussianModel``: ``mean_`` (R, d), ``cov_`` (R, d, d)) or
sufficient-statistic batch (``GaussianStats``) is a plain object whose attributes are
arrays, numbers and nested objects of the same kind. :func:`encode` turns one into a JSON
tree whose leaves are numeric arrays (``chainstate`` stores those as ``.npy`` members);
:func:`decode` rebuilds it, constructing **only** the classes the family lists in
``state_classes`` (by name) and only with data attributes, so a state file from someone
else can give wrong numbers at worst, never run code.

Arrays keep their dtype and values bit for bit, numpy scalars stay numpy scalars of their
dtype (a float32 attribute does not silently become a Python float), and tuples stay
tuples: a model rebuilt from its state computes exactly what the original would have.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Unsupported(TypeError):
    """An object the codec cannot represent as data (the family cannot resume from state)."""


def encode(obj: Any, classes: tuple[type, ...]) -> Any:
    """``obj`` as a tree of dicts, lists, JSON scalars and numeric arrays."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise Unsupported(f"an array of dtype {obj.dtype} is not numeric data")
        return obj
    if isinstance(obj, (np.bool_, np.integer, np.floating)):
        return {"$scalar": np.asarray(obj)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {"$tuple": [encode(v, classes) for v in obj]}
    if isinstance(obj, list):
        return [encode(v, classes) for v in obj]
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise Unsupported("a dict with keys other than text")
        return {"$dict": {k: encode(v, classes) for k, v in obj.items()}}
    if type(obj) in classes and hasattr(obj, "__dict__") and not hasattr(type(obj), "__slots__"):
        return {"$object": type(obj).__qualname__,
                "attrs": {k: encode(v, classes) for k, v in vars(obj).items()}}
    raise Unsupported(f"a {type(obj).__name__} is not among the family's state classes")


def decode(tree: Any, classes: tuple[type, ...]) -> Any:
    """The object :func:`encode` made of ``tree``; ValueError for anything else."""
    if isinstance(tree, np.ndarray) or tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, list):
        return [decode(v, classes) for v in tree]
    if not isinstance(tree, dict) or len(tree) not in (1, 2):
        raise ValueError("a model state entry is not a value, list or tagged object")
    if set(tree) == {"$scalar"}:
        value = tree["$scalar"]
        if not isinstance(value, np.ndarray) or value.ndim != 0:
            raise ValueError("a scalar of a model state is not a 0-d array")
        return value[()]
    if set(tree) == {"$tuple"} and isinstance(tree["$tuple"], list):
        return tuple(decode(v, classes) for v in tree["$tuple"])
    if set(tree) == {"$dict"} and isinstance(tree["$dict"], dict):
        return {str(k): decode(v, classes) for k, v in tree["$dict"].items()}
    if set(tree) == {"$object", "attrs"} and isinstance(tree["attrs"], dict):
        by_name = {c.__qualname__: c for c in classes}
        cls = by_name.get(tree["$object"]) if isinstance(tree["$object"], str) else None
        if cls is None:
            raise ValueError(f"a model state names class '{str(tree['$object'])[:40]}', which "
                             f"is not among the family's state classes")
        obj = object.__new__(cls)   # no __init__: the attributes are restored as they were
        for k, v in tree["attrs"].items():
            if not (isinstance(k, str) and k.isidentifier() and not k.startswith("__")):
                raise ValueError(f"a model state has attribute name '{str(k)[:40]}'")
            obj.__dict__[k] = decode(v, classes)
        return obj
    raise ValueError("a model state entry has an unknown tag")
