"""The default inference backend: a posebridge ONNX model (decoding inside the graph) in ONNX Runtime.

A posebridge ONNX file takes the normalised NCHW float32 batch (input `input`, dynamic batch) and
returns `angles` and `stds` (N, 3), yaw/pitch/roll in degrees. Its `ModelMeta` (crop protocol,
normalisation, bins, filter defaults) is JSON in the ONNX metadata key `posebridge_meta`, so the file
is self-describing and ONNX Runtime alone runs it (posebridge.models.export writes such files).
"""

from __future__ import annotations

import json
import os

import numpy as np

from posebridge.errors import ConfigError, InputFileError
from posebridge.inference.meta import ModelMeta
from posebridge.inference.onnx_session import open_session

INPUT_NAME = "input"
OUTPUT_NAMES = ("angles", "stds")
META_KEY = "posebridge_meta"


class OnnxBackend:
    """ONNX Runtime session over a posebridge ONNX graph; `run(batch) -> (angles, stds)`."""

    def __init__(self, model: str | os.PathLike | bytes, device: str = "cpu", threads: int = 1,
                 name: str = "onnx") -> None:
        self.name = name
        self.session = open_session(model, threads=threads, device=device)
        self.provider = self.session.get_providers()[0]
        where = "<in-memory model>" if isinstance(model, bytes) else model
        self.meta = meta_from_session(self.session, where)
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if INPUT_NAME not in inputs or not set(OUTPUT_NAMES) <= outputs:
            raise InputFileError(where, f"not a posebridge pose model (inputs {sorted(inputs)}, outputs "
                                        f"{sorted(outputs)}; expected {INPUT_NAME!r} -> "
                                        f"{list(OUTPUT_NAMES)})")
        self._outputs = list(OUTPUT_NAMES) + (["box"] if "box" in outputs else [])

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        angles, stds = self.run_all(batch)[:2]
        return angles, stds

    def run_all(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Angles, spreads and, for a model with a box head, the (N, 3) ROI offsets (else None)."""
        out = self.session.run(self._outputs, {INPUT_NAME: batch})
        return out[0], out[1], (out[2] if len(out) == 3 else None)


def meta_from_session(session, where: object) -> ModelMeta:
    """The validated ModelMeta stored in a posebridge ONNX model's metadata."""
    props = session.get_modelmeta().custom_metadata_map
    if META_KEY not in props:
        raise InputFileError(where, f"ONNX model has no '{META_KEY}' metadata; export it with posebridge")
    try:
        raw = json.loads(props[META_KEY])
        return ModelMeta.from_dict(raw)
    except json.JSONDecodeError as exc:
        raise InputFileError(where, f"'{META_KEY}' metadata is not JSON ({exc.msg})") from None
    except ConfigError as exc:
        raise InputFileError(where, f"bad model metadata: {exc}") from None
