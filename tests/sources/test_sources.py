"""Frame sources: real files written by OpenCV, a fake capture only to provoke camera faults."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from posebridge.errors import ConfigError, InputFileError, PoseBridgeError
from posebridge.sources import open_source
from posebridge.sources.camera import CameraSource
from posebridge.sources.folder import ImageFolderSource
from posebridge.sources.video import VideoFileSource

W, H = 160, 120


def frame_image(i: int) -> np.ndarray:
    """A frame whose brightness encodes its number (survives lossy codecs)."""
    return np.full((H, W, 3), 10 + 12 * i, np.uint8)


def frame_number(img: np.ndarray) -> int:
    return int(round((float(img.mean()) - 10) / 12))


def write_video(path: Path, n: int, fps: float, fourcc: str = "MJPG") -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (W, H))
    assert writer.isOpened()
    for i in range(n):
        writer.write(frame_image(i))
    writer.release()
    return path


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.avi", 20, 25.0)


# ------------------------------------------------------------------------------------------ video


@pytest.mark.parametrize("fourcc,name", [("MJPG", "clip.avi"), ("mp4v", "clip.mp4")])
def test_video_fast_reads_every_frame_in_order(tmp_path, fourcc, name):
    path = write_video(tmp_path / name, 12, 30.0, fourcc)
    src = open_source(str(path), realtime=False)
    frames = list(src)
    assert [f.index for f in frames] == list(range(12))
    assert [frame_number(f.image) for f in frames] == list(range(12))
    assert frames[0].image.shape == (H, W, 3)
    assert src.read() is None and src.ended
    assert src.stats()["frames"] == 12 and src.stats()["dropped"] == 0
    src.close()


def test_video_realtime_is_paced_and_stamped_on_schedule(video):
    src = VideoFileSource(video, realtime=True, drop_late=False)  # no drops even on a loaded CI machine
    assert src.fps == pytest.approx(25.0)
    t0 = time.time()
    frames = list(src)
    elapsed = time.time() - t0
    assert len(frames) == 20
    stamps = np.array([f.t_capture for f in frames])
    np.testing.assert_allclose(np.diff(stamps), 1 / 25.0, atol=1e-6)  # on schedule, not jittery
    assert elapsed >= 19 / 25.0 - 0.02  # really waited
    assert abs(stamps[0] - t0) < 0.1


def test_video_realtime_drops_stale_frames_for_a_slow_reader(video):
    src = VideoFileSource(video, realtime=True, drop_late=True)
    got = []
    while (f := src.read()) is not None:
        got.append(f)
        time.sleep(0.1)  # 2.5 frame periods per read
    idx = [f.index for f in got]
    assert src.stats()["dropped"] > 5
    assert len(got) + src.stats()["dropped"] == 20
    assert idx == sorted(idx) and max(np.diff(idx)) >= 2
    assert all(frame_number(f.image) == f.index for f in got)  # the frame shown is the one due


def test_video_fast_mode_never_drops(video):
    src = VideoFileSource(video, realtime=False)
    n = 0
    while src.read() is not None:
        n += 1
        time.sleep(0.01)
    assert n == 20 and src.stats()["dropped"] == 0


def test_video_loop_restarts(video):
    src = VideoFileSource(video, realtime=False, loop=True)
    frames = [src.read() for _ in range(45)]
    assert [frame_number(f.image) for f in frames[18:23]] == [18, 19, 0, 1, 2]
    assert frames[44].index == 44 and src.stats()["loops"] == 2


def test_missing_and_corrupt_video_are_one_line_errors(tmp_path):
    with pytest.raises(InputFileError, match="not found") as err:
        VideoFileSource(tmp_path / "nope.mp4")
    assert "nope.mp4" in str(err.value)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video\n" * 50)
    with pytest.raises(InputFileError, match="cannot decode") as err:
        open_source(str(bad))
    assert err.value.path == str(bad) and "\n" not in str(err.value)


# ----------------------------------------------------------------------------------------- folder


def write_folder(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"img{i}.png"), frame_image(i))  # img10 must sort after img9
    return folder


def test_folder_reads_in_natural_order_and_skips_corrupt_images(tmp_path, caplog):
    folder = write_folder(tmp_path / "imgs", 12)
    (folder / "img5b.jpg").write_bytes(b"\xff\xd8 broken jpeg")
    (folder / "notes.txt").write_text("ignored")
    src = open_source(str(folder), realtime=False)
    assert isinstance(src, ImageFolderSource)
    with caplog.at_level(logging.WARNING):
        frames = list(src)
    assert [frame_number(f.image) for f in frames] == list(range(12))
    assert src.stats()["skipped"] == 1 and src.stats()["frames"] == 12
    assert any("img5b.jpg" in r.getMessage() and "skipped" in r.getMessage() for r in caplog.records)


def test_folder_realtime_pacing_follows_fps(tmp_path):
    folder = write_folder(tmp_path / "imgs", 5)
    src = ImageFolderSource(folder, realtime=True, fps=20.0, drop_late=False)
    t0 = time.time()
    frames = list(src)
    assert len(frames) == 5 and time.time() - t0 >= 4 / 20.0 - 0.02
    np.testing.assert_allclose(np.diff([f.t_capture for f in frames]), 0.05, atol=1e-6)


def test_folder_errors(tmp_path):
    with pytest.raises(InputFileError, match="no images"):
        (tmp_path / "empty").mkdir()
        open_source(str(tmp_path / "empty"))
    with pytest.raises(InputFileError, match="no such file"):
        open_source(str(tmp_path / "missing_dir"))


def test_single_image_file(tmp_path):
    path = tmp_path / "one.jpg"
    cv2.imwrite(str(path), frame_image(3))
    src = open_source(str(path), realtime=False)
    frames = list(src)
    assert len(frames) == 1 and frame_number(frames[0].image) == 3


def test_unknown_source_option_is_a_config_error(video):
    with pytest.raises(ConfigError, match="colour"):
        open_source(str(video), colour="red")


# ----------------------------------------------------------------------------------------- camera


class FakeCapture:
    """Produces numbered frames every `period` seconds; fails (read -> False) after `fail_after`."""

    def __init__(self, start: int = 0, fail_after: int | None = None, period: float = 0.002):
        self.n = start
        self.fail_after = fail_after
        self.period = period
        self.released = False

    def isOpened(self) -> bool:
        return not self.released

    def read(self):
        time.sleep(self.period)
        if self.fail_after is not None and self.n >= self.fail_after:
            return False, None
        img = np.full((H, W, 3), self.n % 256, np.uint8)
        self.n += 1
        return True, img

    def release(self) -> None:
        self.released = True


class FlakyCamera:
    """Capture factory: the first capture dies after 5 frames, the next `refusals` opens fail, then a
    working capture numbered from 100 appears (a camera unplugged and plugged back in)."""

    def __init__(self, refusals: int = 3):
        self.refusals = refusals
        self.opens = 0
        self.captures: list[FakeCapture] = []

    def __call__(self, device):
        self.opens += 1
        if self.opens == 1:
            cap = FakeCapture(0, fail_after=5)
        elif self.opens <= 1 + self.refusals:
            raise OSError("device unplugged")
        else:
            cap = FakeCapture(100)
        self.captures.append(cap)
        return cap


def test_camera_loss_and_recovery(caplog):
    factory = FlakyCamera(refusals=3)
    with caplog.at_level(logging.INFO, logger="posebridge.sources.camera"):
        cam = open_source(0, capture_factory=factory, retry_initial=0.01, retry_max=0.05)
        try:
            values = []
            deadline = time.time() + 5
            while time.time() < deadline:
                f = cam.read(timeout=1.0)
                if f is not None:
                    values.append(int(f.image[0, 0, 0]))
                    if values[-1] >= 100:
                        break
            stats = cam.stats()
        finally:
            cam.close()
    assert values[0] < 5 and values[-1] >= 100  # frames before the loss, then frames after recovery
    assert stats["losses"] == 1 and stats["reconnects"] == 1 and stats["connected"]
    assert factory.captures[0].released  # the failed device was closed
    assert factory.opens == 1 + 3 + 1
    msgs = [r.getMessage() for r in caplog.records]
    assert any("camera lost" in m for m in msgs) and any("camera back" in m for m in msgs)


def test_camera_read_during_loss_times_out_and_close_unblocks():
    dead_forever = {"n": 0}

    def factory(device):
        dead_forever["n"] += 1
        if dead_forever["n"] == 1:
            return FakeCapture(0, fail_after=1)
        raise OSError("gone")

    cam = CameraSource(0, capture_factory=factory, retry_initial=0.01, retry_max=0.02)
    assert cam.read(timeout=1.0) is not None
    t0 = time.time()
    assert cam.read(timeout=0.2) is None  # lost: no frame, but not the end
    assert 0.15 < time.time() - t0 < 1.0 and not cam.ended and not cam.connected
    result = {}
    reader = threading.Thread(target=lambda: result.setdefault("f", cam.read()))  # blocks: no timeout
    reader.start()
    time.sleep(0.2)
    assert reader.is_alive()
    cam.close()
    reader.join(2.0)
    assert not reader.is_alive() and result["f"] is None and cam.ended
    assert dead_forever["n"] > 3  # kept retrying while lost


def test_camera_hands_on_the_newest_frame_and_counts_drops():
    cam = CameraSource(0, capture_factory=lambda d: FakeCapture(0, period=0.002))
    try:
        got, lag = [], []
        for _ in range(5):
            time.sleep(0.05)  # ~25 frames arrive meanwhile
            f = cam.read(timeout=1.0)
            lag.append(cam.stats()["captured"] - 1 - f.index)  # frames newer than the one handed out
            got.append(f)
        idx = [f.index for f in got]
        assert max(lag) <= 3  # the newest frame, not a queued old one
        assert min(np.diff(idx)) > 1
        stats = cam.stats()
        assert stats["frames"] == 5 and stats["dropped"] >= idx[-1] + 1 - 5
    finally:
        cam.close()


def test_no_camera_is_one_clear_error():
    class Closed(FakeCapture):
        def isOpened(self) -> bool:
            return False

    with pytest.raises(PoseBridgeError, match="--source FILE") as err:
        open_source("0", capture_factory=lambda d: Closed())
    assert "\n" not in str(err.value) and "camera 0" in str(err.value)


def test_missing_device_path_with_real_opencv():
    with pytest.raises(PoseBridgeError, match="--source FILE"):
        open_source("/dev/video97")


# ---------------------------------------------------------------------------------------- session


def test_session_files_are_read_by_the_session_source(tmp_path):
    recording = pytest.importorskip("posebridge.formats.session_file")
    path = tmp_path / "take.pbsession"
    writer = recording.SessionWriter(path, video=True)
    for i in range(4):
        writer.write_frame(i, 1000.0 + i / 30, (W, H), image=frame_image(i))
    writer.close()
    renamed = tmp_path / "take.bin"  # recognised by its magic bytes, whatever the name
    renamed.write_bytes(path.read_bytes())
    for p in (path, renamed):
        src = open_source(str(p), realtime=False)
        frames = list(src)
        assert [frame_number(f.image) for f in frames] == [0, 1, 2, 3]
        src.close()
    broken = tmp_path / "broken.pbsession"
    broken.write_bytes(b"garbage")
    with pytest.raises(InputFileError) as err:
        open_source(str(broken))
    assert "broken.pbsession" in str(err.value) and "video" not in str(err.value)


def test_device_paths_and_stream_urls_open_as_live_cameras():
    class Recording(FakeCapture):
        def __init__(self):
            super().__init__()
            self.props = {}

        def set(self, prop, value):
            self.props[prop] = value
            return True

    opened = {}

    def factory(device):
        opened["device"] = device
        opened["cap"] = Recording()
        return opened["cap"]

    cam = open_source("rtsp://127.0.0.1:8554/cam", capture_factory=factory, width=320, height=240, fps=15)
    try:
        assert cam.live and cam.name == "rtsp://127.0.0.1:8554/cam" and opened["device"] == cam.name
        assert cam.read(timeout=1.0) is not None
        props = opened["cap"].props
        assert props[cv2.CAP_PROP_FRAME_WIDTH] == 320 and props[cv2.CAP_PROP_FPS] == 15
    finally:
        cam.close()
    assert opened["cap"].released


def test_a_device_that_opens_but_gives_no_frames_is_retried_with_backoff(caplog):
    opens = []

    def factory(device):
        opens.append(time.time())
        return FakeCapture(0, fail_after=0 if len(opens) > 1 else 3)  # 3 frames, then a dead device

    with caplog.at_level(logging.WARNING, logger="posebridge.sources.camera"):
        cam = CameraSource(0, capture_factory=factory, retry_initial=0.05, retry_max=0.2)
        try:
            time.sleep(0.6)
            stats = cam.stats()
        finally:
            cam.close()
    assert stats["losses"] == 1 and stats["reconnects"] == 0 and not stats["connected"]
    assert 3 <= len(opens) <= 8  # backing off, not spinning
    assert len([r for r in caplog.records if "camera lost" in r.getMessage()]) == 1
