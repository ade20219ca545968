"""`posebridge cameras` and camera names as `--source`, on a fake sysfs tree and /dev (the roots and the
prober are parameters), plus the V4L2 ioctl structures against a fake driver."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from posebridge.errors import ConfigError, InputFileError
from posebridge.sources import devices
from posebridge.sources.devices import (
    CAPABILITY,
    FMTDESC,
    FRMSIZE,
    Probe,
    find_camera,
    list_cameras,
    v4l2_probe,
)


def fake_tree(root: Path, names: dict[int, str]) -> tuple[Path, Path]:
    sysfs, dev = root / "sys" / "class" / "video4linux", root / "dev"
    dev.mkdir(parents=True)
    for index, name in names.items():
        (sysfs / f"video{index}").mkdir(parents=True)
        (sysfs / f"video{index}" / "name").write_text(name + "\n")
        (dev / f"video{index}").touch()
    (sysfs / "v4l-subdev0").mkdir()  # not a video node: ignored
    return sysfs, dev


PROBES = {
    "video0": Probe(True, {"MJPG": [(1280, 720), (640, 480)], "YUYV": [(640, 480)]}, "Integrated Camera"),
    "video1": Probe(False, card="Integrated Camera"),  # the UVC metadata node
    "video2": Probe(True, {"YUYV": [(1920, 1080)]}, "Logitech BRIO"),
    "video10": Probe(True, {"YU12": [(1280, 720)]}, "OBS Virtual Camera"),
    "video3": Probe(False, card="Elgato HD60"),  # an output-only node: not a camera to read
}


@pytest.fixture
def tree(tmp_path):
    uvc = "Integrated Camera: Integrated C"
    sysfs, dev = fake_tree(tmp_path, {0: uvc, 1: uvc, 2: "Logitech BRIO", 3: "Elgato HD60",
                                      10: "OBS Virtual Camera"})
    return sysfs, dev, lambda path: PROBES[path.name]


def test_lists_devices_in_index_order_with_names_paths_and_sizes(tree):
    sysfs, dev, probe = tree
    cams = list_cameras(sysfs, dev, probe, platform="linux")
    assert [(c.path, c.index, c.capture) for c in cams] == [
        (str(dev / "video0"), 0, True), (str(dev / "video1"), 1, False), (str(dev / "video2"), 2, True),
        (str(dev / "video3"), 3, False), (str(dev / "video10"), 10, True)]
    assert cams[0].name == "Integrated Camera: Integrated C" and cams[0].sizes() == [(1280, 720), (640, 480)]
    assert "not a capture node" in cams[1].note


def test_a_name_picks_the_capture_node(tree):
    sysfs, dev, probe = tree
    cams = list_cameras(sysfs, dev, probe, platform="linux")
    assert find_camera("Integrated Camera: Integrated C", cams) == str(dev / "video0")
    assert find_camera("integrated", cams) == str(dev / "video0")  # a prefix, any case
    assert find_camera("brio", cams) == str(dev / "video2")  # a part of the name
    assert find_camera("obs virtual camera", cams) == str(dev / "video10")
    assert find_camera("Elgato", cams) is None  # its only node does not capture
    assert find_camera("Razer Kiyo", cams) is None
    with pytest.raises(ConfigError, match="several cameras"):
        find_camera("camera", cams)  # "Integrated Camera..." and "OBS Virtual Camera"


def test_source_by_name_opens_that_device(tree, monkeypatch):
    """`--source NAME`: the factory resolves the name to the device path and opens a camera on it."""
    sysfs, dev, probe = tree
    monkeypatch.setattr(devices, "SYSFS_ROOT", sysfs)
    monkeypatch.setattr(devices, "DEV_ROOT", dev)
    monkeypatch.setattr(devices, "v4l2_probe", probe)
    monkeypatch.setattr(devices, "list_cameras", lambda: devices.linux_cameras(sysfs, dev, probe))
    opened = []

    class FakeCamera:
        def __init__(self, device, **opts):
            opened.append(device)

    import posebridge.sources.camera as camera

    monkeypatch.setattr(camera, "CameraSource", FakeCamera)
    from posebridge.sources import open_source

    open_source("Logitech BRIO")
    assert opened == [str(dev / "video2")]
    with pytest.raises(InputFileError, match="no camera of that name.*posebridge cameras"):
        open_source("No Such Camera")


def test_cameras_command_prints_and_json(tree, monkeypatch, capsys):
    sysfs, dev, probe = tree
    monkeypatch.setattr(devices, "list_cameras", lambda: devices.linux_cameras(sysfs, dev, probe))
    from posebridge.cli import main

    assert main(["cameras"]) == 0
    out = capsys.readouterr().out
    assert "Integrated Camera: Integrated C" in out and "MJPG  1280x720 640x480" in out
    assert "not a capture node" in out and f"--source {dev / 'video0'}" in out
    assert main(["cameras", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[2]["name"] == "Logitech BRIO" and data[2]["formats"] == {"YUYV": [[1920, 1080]]}


def test_no_devices(tmp_path, capsys):
    assert list_cameras(tmp_path / "none", tmp_path, platform="linux") == []
    from posebridge.commands.cameras import format_cameras

    assert "no capture devices" in format_cameras([])


def test_opencv_probing_elsewhere():
    import cv2

    class Cap:
        def __init__(self, index):
            self.index, self.w, self.h = index, 640, 480

        def isOpened(self):  # noqa: N802 - OpenCV's name
            return self.index in (0, 2)

        def get(self, prop):
            return self.w if prop == cv2.CAP_PROP_FRAME_WIDTH else self.h

        def set(self, prop, value):  # this camera tops out at 1280x720
            if prop == cv2.CAP_PROP_FRAME_WIDTH:
                self.w = min(value, 1280)
            else:
                self.h = min(value, 720)

        def release(self):
            pass

    cams = list_cameras(platform="win32", capture_factory=Cap)
    assert [c.path for c in cams] == ["0", "2"]
    assert cams[0].sizes() == [(1280, 720), (640, 480), (320, 240)] and cams[0].name == "camera 0"


# ------------------------------------------------------------------- V4L2 structures, fake driver

def null_fd(path: Path) -> int:
    """A real descriptor for the fake driver's calls (v4l2_probe closes it)."""
    return os.open(os.devnull, os.O_RDONLY)


def test_v4l2_probe_reads_formats_and_sizes_through_ioctls():
    """The request numbers and layouts of linux/videodev2.h, answered by a fake driver."""
    assert (CAPABILITY.size, FMTDESC.size, FRMSIZE.size) == (104, 64, 44)
    mjpg, yuyv = (struct.unpack("<I", code)[0] for code in (b"MJPG", b"YUYV"))
    formats = [mjpg, yuyv]
    sizes = {mjpg: [(1280, 720), (640, 480)], yuyv: None}  # YUYV: stepwise 160x120 .. 1920x1080
    calls = []

    def ioctl(fd, request, buf):
        calls.append(request)
        if request == devices.VIDIOC_QUERYCAP:
            buf[:] = CAPABILITY.pack(b"uvcvideo", b"Fake Cam", b"usb-1", 1, 0x84A00001, 0x04200001)
        elif request == devices.VIDIOC_ENUM_FMT:
            index, kind = struct.unpack_from("<II", buf)
            assert kind == devices.BUF_TYPE_VIDEO_CAPTURE
            if index >= len(formats):
                raise OSError(22, "Invalid argument")
            buf[:] = FMTDESC.pack(index, kind, 0, b"fmt", formats[index], 0)
        elif request == devices.VIDIOC_ENUM_FRAMESIZES:
            index, fmt = struct.unpack_from("<II", buf)
            if sizes[fmt] is None:
                if index:
                    raise OSError(22, "Invalid argument")
                buf[:] = FRMSIZE.pack(0, fmt, devices.FRMSIZE_STEPWISE, 160, 1920, 16, 120, 1080, 8)
            elif index >= len(sizes[fmt]):
                raise OSError(22, "Invalid argument")
            else:
                buf[:] = FRMSIZE.pack(index, fmt, devices.FRMSIZE_DISCRETE, *sizes[fmt][index], 0, 0, 0, 0)
        else:
            raise AssertionError(hex(request))

    probe = v4l2_probe(Path("/dev/video0"), ioctl=ioctl, opener=null_fd)
    assert probe.capture and probe.card == "Fake Cam"
    assert probe.formats == {"MJPG": [(1280, 720), (640, 480)], "YUYV": [(1920, 1080), (160, 120)]}
    assert calls[0] == 0x80685600 and 0xC0405602 in calls and 0xC02C564A in calls


def test_v4l2_probe_of_a_metadata_node_and_of_an_unopenable_one(tmp_path):
    def ioctl(fd, request, buf):
        buf[:] = CAPABILITY.pack(b"uvcvideo", b"Fake Cam", b"usb-1", 1, 0x84A00001, 0x04800000)  # metadata

    assert v4l2_probe(Path("/dev/video1"), ioctl=ioctl, opener=null_fd).capture is False
    probe = v4l2_probe(tmp_path / "missing")
    assert not probe.capture and probe.error
