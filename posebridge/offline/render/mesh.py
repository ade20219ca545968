"""The head scan as arrays: a binary glTF (`.glb`) read with NumPy, plus its colour texture.

Only what the head scan needs is supported: one mesh with one triangle primitive carrying POSITION,
NORMAL and TEXCOORD_0 (float32) and unsigned 8/16/32-bit indices. Anything else is one InputFileError
line naming the file. The default files are the copy shipped in `examples/head-scan/` (CC BY 3.0, see
its README), else `../shared/data/head-scan/`.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from posebridge.errors import InputFileError
from posebridge.paths import EXAMPLES, shared_data

MESH_NAME = "LeePerrySmith.glb"
TEXTURE_NAME = "Map-COL.jpg"
GLB_MAGIC = b"glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942
COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}
DTYPES = {5121: np.uint8, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}


@dataclass
class HeadMesh:
    """Vertices in model units (y up, the face towards +z), triangles, and the colour texture.

    `texture` is RGB uint8 with its top row first (as read from the file); the UVs follow OpenGL's
    convention, so a sampler must read it at (u, 1 - v)."""

    positions: np.ndarray  # (N, 3) float32
    normals: np.ndarray  # (N, 3) float32
    uvs: np.ndarray  # (N, 2) float32
    indices: np.ndarray  # (M * 3,) uint32
    texture: np.ndarray  # (H, W, 3) uint8 RGB


def asset_dirs() -> list[Path]:
    """Where the head scan is looked for, in order."""
    return [EXAMPLES / "head-scan", shared_data("head-scan")]


def default_assets() -> tuple[Path, Path]:
    """The (mesh, texture) pair from the first folder that has both."""
    for folder in asset_dirs():
        if (folder / MESH_NAME).is_file() and (folder / TEXTURE_NAME).is_file():
            return folder / MESH_NAME, folder / TEXTURE_NAME
    raise InputFileError(asset_dirs()[0] / MESH_NAME, "head scan not found (looked in "
                         + ", ".join(str(d) for d in asset_dirs()) + "); pass --mesh and --texture")


def _chunks(path: Path, data: bytes) -> tuple[dict, bytes]:
    if len(data) < 20 or data[:4] != GLB_MAGIC:
        raise InputFileError(path, "not a binary glTF file (no glTF magic)")
    version, length = struct.unpack_from("<II", data, 4)
    if version != 2 or length > len(data):
        raise InputFileError(path, f"unsupported or truncated glTF (version {version}, {length} bytes "
                                   f"declared, {len(data)} present)")
    doc, binary, off = None, b"", 12
    while off + 8 <= length:
        size, kind = struct.unpack_from("<II", data, off)
        body = data[off + 8: off + 8 + size]
        if len(body) != size:
            raise InputFileError(path, f"truncated glTF chunk at byte {off}")
        if kind == CHUNK_JSON:
            try:
                doc = json.loads(body)
            except ValueError as exc:
                raise InputFileError(path, f"glTF JSON chunk does not parse ({exc})") from None
        elif kind == CHUNK_BIN:
            binary = body
        off += 8 + size
    if not isinstance(doc, dict):
        raise InputFileError(path, "glTF file has no JSON chunk")
    return doc, binary


def _accessor(path: Path, doc: dict, binary: bytes, index: int) -> np.ndarray:
    try:
        acc = doc["accessors"][index]
        view = doc["bufferViews"][acc["bufferView"]]
        dtype = DTYPES[acc["componentType"]]
        comps = COMPONENTS[acc["type"]]
        count = int(acc["count"])
        start = int(view.get("byteOffset", 0)) + int(acc.get("byteOffset", 0))
    except (KeyError, IndexError, TypeError) as exc:
        raise InputFileError(path, f"glTF accessor {index} is not supported ({exc!r})") from None
    stride = view.get("byteStride")
    item = np.dtype(dtype).itemsize * comps
    if stride not in (None, item):
        raise InputFileError(path, f"glTF accessor {index}: interleaved buffers are not supported")
    end = start + count * item
    if end > len(binary):
        raise InputFileError(path, f"glTF accessor {index} runs past the binary chunk")
    arr = np.frombuffer(binary, dtype, count * comps, start)
    return arr.reshape(count, comps) if comps > 1 else arr


def load_glb(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(positions, normals, uvs, indices) of the first primitive of the first mesh."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputFileError(path, f"cannot read ({exc.strerror})") from None
    doc, binary = _chunks(path, data)
    try:
        prim = doc["meshes"][0]["primitives"][0]
        attrs = prim["attributes"]
        wanted = [attrs["POSITION"], attrs["NORMAL"], attrs["TEXCOORD_0"], prim["indices"]]
    except (KeyError, IndexError, TypeError):
        raise InputFileError(path, "glTF mesh needs one primitive with POSITION, NORMAL, TEXCOORD_0 and "
                                   "indices") from None
    if prim.get("mode", 4) != 4:
        raise InputFileError(path, "glTF primitive is not a triangle list")
    pos, nrm, uv, idx = (_accessor(path, doc, binary, i) for i in wanted)
    if pos.dtype != np.float32 or nrm.dtype != np.float32 or uv.dtype != np.float32 or pos.shape[1] != 3:
        raise InputFileError(path, "glTF attributes must be float32 VEC3 positions/normals and VEC2 UVs")
    idx = idx.astype(np.uint32)
    if len(idx) % 3 or (len(idx) and idx.max() >= len(pos)):
        raise InputFileError(path, "glTF indices do not form triangles of this mesh")
    return pos.copy(), nrm.copy(), uv.copy(), idx


def load_texture(path: str | Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputFileError(path, "cannot read the texture image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_head(mesh: str | Path | None = None, texture: str | Path | None = None) -> HeadMesh:
    """The head scan (the default files unless paths are given)."""
    if mesh is None or texture is None:
        default_mesh, default_tex = default_assets()
        mesh, texture = mesh or default_mesh, texture or default_tex
    pos, nrm, uv, idx = load_glb(mesh)
    return HeadMesh(pos, nrm, uv, idx, load_texture(texture))
