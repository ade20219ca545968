"""The optional parts of an install (pyproject.toml `[project.optional-dependencies]`) and the one-line
error a command gives when it needs one that is missing. The runtime (`pip install posebridge`) is what
`serve`, `listen`, `record`, `replay`, `estimate`, `bench`, `cameras` and `models list` need; the
extras add:

- `eval`: SciPy (AFLW2000's .mat labels) and Matplotlib (plots) for `posebridge eval` and the benchmarks;
- `convert`: onnx and tflite2onnx, to convert BlazeFace from its published TFLite files again
  (`models pull blazeface`; the converted models ship with posebridge) and for `--backend onnx-int8`;
- `dlib`: dlib's HOG face detector (`--detector dlib_hog`);
- `torch`: PyTorch (checked by posebridge.inference.backends.require_torch).
"""

from __future__ import annotations

import importlib.util

from posebridge.errors import ConfigError

EXTRAS: dict[str, tuple[str, ...]] = {
    "eval": ("scipy", "matplotlib"),
    "convert": ("onnx", "tflite2onnx"),
    "dlib": ("dlib",),
}


def missing(*modules: str) -> list[str]:
    """The modules of `modules` that cannot be imported here."""
    out = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a finder that refuses it, a half-installed package
            found = False
        if not found:
            out.append(name)
    return out


def require(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """ConfigError in one line naming the extra when `what` needs modules this install lacks."""
    lacking = missing(*(modules or EXTRAS[extra]))
    if lacking:
        raise ConfigError(f"{what} needs {', '.join(lacking)}, which this install does not have: "
                          f"pip install 'posebridge[{extra}]'")
