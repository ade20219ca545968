"""Plain Python values for the encoders (msgpack, JSON): the one `default=` fallback for values the
encoders do not know: numpy scalars and arrays, file paths, and messages with a `to_map()`."""

from __future__ import annotations

import os

import numpy as np


def plain(obj: object) -> object:
    """`obj` as plain Python (numpy scalar -> int/float/bool, array -> nested lists, path -> str, a
    message -> its wire map); TypeError for anything else."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    to_map = getattr(obj, "to_map", None)
    if callable(to_map):
        return to_map()
    raise TypeError(f"cannot encode {type(obj).__name__}: not a numpy value, a path or a message")


def plain_or_text(obj: object) -> object:
    """`plain`, or `str(obj)` for anything else (a value that must always encode, e.g. a control reply)."""
    try:
        return plain(obj)
    except TypeError:
        return str(obj)
