"""Capture devices: what `posebridge cameras` lists and what lets `--source` take a camera's name.

Linux: every `/sys/class/video4linux/videoN` with its `name`, its `/dev/videoN` node and, through V4L2
ioctls (VIDIOC_QUERYCAP, VIDIOC_ENUM_FMT, VIDIOC_ENUM_FRAMESIZES with fcntl; no extra package), whether
it captures video (a UVC camera also has metadata nodes, which do not) and its pixel formats and frame
sizes. Elsewhere: OpenCV opens indices 0..MAX_INDEX-1 and reports the sizes a few common requests give.
The sysfs and /dev roots and the prober are parameters, so the tests run on a fake tree.
"""

from __future__ import annotations

import os
import re
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from posebridge import validation as v
from posebridge.errors import ConfigError

SYSFS_ROOT = Path("/sys/class/video4linux")
DEV_ROOT = Path("/dev")
MAX_INDEX = 10  # OpenCV probing: indices 0..9
COMMON_SIZES = ((320, 240), (640, 480), (1280, 720), (1920, 1080))

# V4L2 (linux/videodev2.h): _IOR('V', 0, v4l2_capability[104]), _IOWR('V', 2, v4l2_fmtdesc[64]),
# _IOWR('V', 74, v4l2_frmsizeenum[44])
VIDIOC_QUERYCAP = 0x80685600
VIDIOC_ENUM_FMT = 0xC0405602
VIDIOC_ENUM_FRAMESIZES = 0xC02C564A
BUF_TYPE_VIDEO_CAPTURE = 1
CAP_VIDEO_CAPTURE = 0x00000001
CAP_DEVICE_CAPS = 0x80000000
FRMSIZE_DISCRETE, FRMSIZE_CONTINUOUS, FRMSIZE_STEPWISE = 1, 2, 3
CAPABILITY = struct.Struct("<16s32s32sIII12x")  # driver, card, bus_info, version, capabilities, device_caps
FMTDESC = struct.Struct("<III32sII12x")  # index, type, flags, description, pixelformat, mbus_code
FRMSIZE = struct.Struct("<III6I8x")  # index, pixel_format, type, union (discrete w, h / stepwise 6)

Ioctl = Callable[[int, int, bytearray], object]


@dataclass
class Probe:
    """What a device says about itself."""

    capture: bool
    formats: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # fourcc -> frame sizes
    card: str = ""
    error: str = ""  # why it could not be asked (permissions, busy, not V4L2)


@dataclass
class CameraInfo:
    path: str  # /dev/videoN, or the OpenCV index as text where there are no device nodes
    name: str
    index: int | None
    capture: bool
    formats: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    note: str = ""

    def sizes(self) -> list[tuple[int, int]]:
        """Every frame size of every format, largest first."""
        return sorted({s for sizes in self.formats.values() for s in sizes}, key=lambda s: (-s[0] * s[1], s))


def fourcc(code: int) -> str:
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip()


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


def v4l2_probe(path: Path, ioctl: Ioctl | None = None, opener: Callable[[Path], int] | None = None) -> Probe:
    """Ask a /dev/videoN node what it is (capture or not, formats, sizes) without streaming from it."""
    import fcntl

    do = ioctl or (lambda fd, req, buf: fcntl.ioctl(fd, req, buf, True))
    try:
        fd = (opener or (lambda p: os.open(p, os.O_RDWR | os.O_NONBLOCK)))(path)
    except OSError as exc:
        return Probe(False, error=exc.strerror or str(exc))
    try:
        buf = bytearray(CAPABILITY.size)
        try:
            do(fd, VIDIOC_QUERYCAP, buf)
        except OSError as exc:
            return Probe(False, error=f"not a V4L2 device ({exc.strerror or exc})")
        _, card, _, _, caps, device_caps = CAPABILITY.unpack(bytes(buf))
        own = device_caps if caps & CAP_DEVICE_CAPS else caps
        probe = Probe(bool(own & CAP_VIDEO_CAPTURE), card=_text(card))
        if not probe.capture:
            return probe
        for i in range(64):
            fmt = bytearray(FMTDESC.pack(i, BUF_TYPE_VIDEO_CAPTURE, 0, b"", 0, 0))
            if not _ask(do, fd, VIDIOC_ENUM_FMT, fmt):
                break
            pixelformat = FMTDESC.unpack(bytes(fmt))[4]
            probe.formats[fourcc(pixelformat)] = _sizes(do, fd, pixelformat)
        return probe
    finally:
        os.close(fd)


def _ask(do: Ioctl, fd: int, request: int, buf: bytearray) -> bool:
    """One enumeration step; False at the end (EINVAL) or on any other refusal."""
    try:
        do(fd, request, buf)
    except OSError:  # EINVAL ends an enumeration; anything else ends it too
        return False
    return True


def _sizes(do: Ioctl, fd: int, pixelformat: int) -> list[tuple[int, int]]:
    sizes: list[tuple[int, int]] = []
    for i in range(256):
        buf = bytearray(FRMSIZE.pack(i, pixelformat, 0, 0, 0, 0, 0, 0, 0))
        if not _ask(do, fd, VIDIOC_ENUM_FRAMESIZES, buf):
            break
        _, _, kind, a, b, c, d, e, _f = FRMSIZE.unpack(bytes(buf))
        if kind == FRMSIZE_DISCRETE:
            sizes.append((a, b))
        else:  # stepwise / continuous: min_w, max_w, step_w, min_h, max_h, step_h -> the two ends
            sizes.extend([(a, d), (b, e)])
            break
    return sorted(set(sizes), key=lambda s: (-s[0] * s[1], s))


def _video_index(name: str) -> int | None:
    m = re.fullmatch(r"video(\d+)", name)
    return int(m.group(1)) if m else None


def linux_cameras(sysfs_root: Path = SYSFS_ROOT, dev_root: Path = DEV_ROOT,
                  probe: Callable[[Path], Probe] = v4l2_probe) -> list[CameraInfo]:
    """Every videoN in sysfs, in index order, with its name and what its device node says."""
    if not sysfs_root.is_dir():
        return []
    entries = sorted((i, p) for p in sysfs_root.iterdir() if (i := _video_index(p.name)) is not None)
    out = []
    for index, entry in entries:
        try:
            name = (entry / "name").read_text(errors="replace").strip()
        except OSError:
            name = ""
        node = dev_root / entry.name
        if not node.exists():
            out.append(CameraInfo(str(node), name, index, False, note="no device node"))
            continue
        p = probe(node)
        note = p.error or ("" if p.capture else "not a capture node (metadata or output)")
        out.append(CameraInfo(str(node), name or p.card, index, p.capture if not p.error else True,
                              p.formats, note))
    return out


def opencv_cameras(capture_factory: Callable[[int], object] | None = None,
                   max_index: int = MAX_INDEX) -> list[CameraInfo]:
    """Indices OpenCV opens, with the sizes that COMMON_SIZES requests give (names are not known)."""
    import cv2

    from posebridge.sources.camera import opencv_capture

    factory = capture_factory or opencv_capture
    out = []
    for index in range(max_index):
        cap = factory(index)
        try:
            if cap is None or not cap.isOpened():
                continue
            sizes = {(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))}
            for w, h in COMMON_SIZES:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
                sizes.add((int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))))
            sizes.discard((0, 0))
            ordered = sorted(sizes, key=lambda s: (-s[0] * s[1], s))
            out.append(CameraInfo(str(index), f"camera {index}", index, True, {"": ordered},
                                  "sizes probed by OpenCV"))
        finally:
            if cap is not None:
                cap.release()
    return out


def list_cameras(sysfs_root: Path = SYSFS_ROOT, dev_root: Path = DEV_ROOT,
                 probe: Callable[[Path], Probe] = v4l2_probe, platform: str = sys.platform,
                 capture_factory: Callable[[int], object] | None = None) -> list[CameraInfo]:
    """The capture devices here (see the module docstring)."""
    if platform.startswith("linux"):
        return linux_cameras(sysfs_root, dev_root, probe)
    return opencv_cameras(capture_factory)


def find_camera(name: str, cameras: list[CameraInfo] | None = None) -> str | None:
    """The device path of the capture device called `name` (case-insensitive; a unique prefix or part of
    a name also matches); None when no camera has that name; ConfigError when several do."""
    text = v.text("source", name, 256).strip().lower()
    if not text:
        return None
    found = [c for c in (list_cameras() if cameras is None else cameras) if c.capture and c.name]
    for match in (lambda c: c.name.lower() == text, lambda c: c.name.lower().startswith(text),
                  lambda c: text in c.name.lower()):
        hits = [c for c in found if match(c)]
        names = {c.name for c in hits}
        if len(names) == 1:
            return hits[0].path  # the lowest capture node of that device
        if len(names) > 1:
            raise ConfigError(f"source: {v.show(name)} names several cameras ({'; '.join(sorted(names))}); "
                              "give more of the name or the /dev/videoN path (`posebridge cameras`)")
    return None
