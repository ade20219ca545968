"""Session files (docs/session-format.md): a 16-byte preamble, then append-only records
`[u32 length][u32 crc32][msgpack map]`, each written with one write() call, so a kill -9 leaves every
complete record readable and at most a truncated tail, which the reader reports instead of failing.

Writer: `SessionWriter(path, header={...}, video=False)`, `write_frame(...)`, `write_event(...)`,
`close()`. Reader: `SessionReader(path)` iterates records and reports `problem` (truncated/corrupt
tail) and `complete` (an `end` record was seen). Replay helpers: `paced()` (original timing, or
`speed`) and `refilter()` (run a filter with new parameters over the recorded raw estimates).
"""

from __future__ import annotations

import errno
import io
import logging
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from posebridge.errors import InputFileError, PoseBridgeError

log = logging.getLogger(__name__)

MAGIC = b"\x89PBSESS\n"  # 8 bytes; the high first byte and the newline catch text-mode mangling
FORMAT_VERSION = (1, 0)  # (major, minor): readers refuse a newer major, accept any minor
PREAMBLE = struct.Struct("<8sHHI")  # magic, major, minor, reserved (0)
RECORD_HEAD = struct.Struct("<II")  # payload length, crc32(payload)
MAX_RECORD_BYTES = 64 << 20  # a frame record with a JPEG is well under 1 MiB
SUFFIX = ".pbsession"


class SessionWriteError(PoseBridgeError):
    """The session file could not be written (disk full, permissions...); what was written is readable."""


def _pack(record: dict) -> bytes:
    payload = msgpack.packb(record, use_bin_type=True, use_single_float=False, default=_plain)
    return RECORD_HEAD.pack(len(payload), zlib.crc32(payload)) + payload


def _plain(obj: Any) -> Any:
    """msgpack fallback: numpy scalars/arrays, tuples, dataclass-like messages."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "to_map"):
        return obj.to_map()
    raise TypeError(f"cannot store {type(obj).__name__} in a session record")


class SessionWriter:
    """Writes a session file; every record is one write() of its full bytes (flushed per record).

    `video=True` stores each frame's image (passed as `image=` to `write_frame`) as JPEG bytes in the
    frame record. `fsync=True` also fsyncs each record (survives power loss, not just kill -9).
    On a write error (ENOSPC...) the partial record is cut off again where possible, the writer stops,
    and SessionWriteError says how many records are safe; later writes raise the same error.
    """

    def __init__(self, path: str | os.PathLike, header: dict | None = None, video: bool = False,
                 jpeg_quality: int = 85, fsync: bool = False, overwrite: bool = True) -> None:
        self.path = Path(path)
        self.video = video
        self.jpeg_quality = int(jpeg_quality)
        self.fsync = fsync
        self.records = 0
        self.frames = 0
        self.bytes = 0
        self.error: SessionWriteError | None = None
        self._closed = False
        mode = "wb" if overwrite else "xb"
        try:
            self._fh: io.RawIOBase = open(self.path, mode, buffering=0)  # noqa: SIM115 (closed in close())
        except FileExistsError:
            raise SessionWriteError(f"{self.path}: already exists") from None
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise SessionWriteError(f"{self.path}: cannot create session file: {why}") from None
        self._write(PREAMBLE.pack(MAGIC, *FORMAT_VERSION, 0))
        head = {"kind": "header", "format": "posebridge-session", "version": list(FORMAT_VERSION),
                "created": time.time(), "video": "jpeg" if video else "none"}
        head.update(header or {})
        try:
            import posebridge

            head.setdefault("posebridge", getattr(posebridge, "__version__", ""))
        except ImportError:  # pragma: no cover
            pass
        self.write_record(head)

    # -- low level -------------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        if self._closed:
            raise SessionWriteError(f"{self.path}: session file is closed")
        start = self.bytes
        try:
            view = memoryview(data)
            while view:  # FileIO.write may write less than asked (signals, nearly full disks)
                n = self._fh.write(view)
                if n is None or n <= 0:
                    raise OSError(errno.EIO, "short write")
                self.bytes += n
                view = view[n:]
            if self.fsync:
                os.fsync(self._fh.fileno())
        except OSError as exc:
            self._fail(exc, start)
            raise self.error from None

    def _fail(self, exc: OSError, good_bytes: int) -> None:
        """Cut off a partial record (best effort) so the file ends on a record boundary."""
        try:
            self._fh.truncate(good_bytes)
            self.bytes = good_bytes
        except OSError:
            pass  # the reader reports the partial tail instead
        try:
            self._fh.close()
        except OSError:
            pass
        self._closed = True
        what = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        self.error = SessionWriteError(
            f"{self.path}: cannot write session: {what}; the first {self.records} records "
            f"({self.frames} frames) are saved and readable")

    def write_record(self, record: dict) -> None:
        """Append one record (a map with a string `kind`)."""
        self._write(_pack(record))
        self.records += 1

    # -- records -----------------------------------------------------------------------------------------

    def write_frame(self, frame_index: int, t_capture: float, frame_size: Iterable[int],
                    faces: list[dict] | None = None, messages: list | None = None,
                    timings: dict[str, float] | None = None, image: np.ndarray | None = None,
                    **extra: Any) -> None:
        """One processed frame: raw estimates per face (`face_id`, `box`, `raw`, `std`), the published
        messages (PoseMessage or wire maps: filtered pose, q, tracked...), per-stage timings in ms, and
        with `video=True` the frame as JPEG."""
        rec: dict[str, Any] = {
            "kind": "frame", "index": int(frame_index), "t_capture": float(t_capture),
            "frame": [int(v) for v in frame_size], "faces": list(faces or []),
            "messages": [m.to_map() if hasattr(m, "to_map") else m for m in (messages or [])],
            "timings": {k: float(v) for k, v in (timings or {}).items()},
        }
        if self.video and image is not None:
            import cv2

            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if ok:
                rec["jpeg"] = buf.tobytes()
        rec.update(extra)
        self.write_record(rec)
        self.frames += 1

    def write_event(self, name: str, t: float | None = None, **detail: Any) -> None:
        """Something that happened (camera lost, recenter, set...): `{"kind": "event", "name", "t", ...}`."""
        when = time.time() if t is None else float(t)
        self.write_record({"kind": "event", "name": name, "t": when, **detail})

    def close(self, reason: str = "closed") -> None:
        """Finalise with an `end` record (idempotent; a failed writer just closes)."""
        if self._closed:
            return
        try:
            self.write_record({"kind": "end", "t": time.time(), "frames": self.frames, "reason": reason})
        except SessionWriteError:
            log.warning("%s", self.error)
            return
        self._closed = True
        self._fh.close()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close("error" if exc[0] is not None else "closed")


class SessionReader:
    """Reads a session file. Iterating yields records (dicts) after the header; a bad tail stops the
    iteration and is described in `problem` (with `good_bytes`, the offset of the last good record end).

    Raises InputFileError only when nothing is usable: missing file, not a session, newer major format,
    or no readable header record.
    """

    path: Path
    header: dict  # the header record
    problem: str | None  # why reading stopped early (truncated/corrupt tail), None when the file is whole
    complete: bool  # an `end` record was seen (clean shutdown)
    records: int  # records read after the header
    good_bytes: int  # offset where the intact part of the file ends

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.problem = None
        self.complete = False
        self.records = 0
        try:
            self._data = self.path.read_bytes()
        except FileNotFoundError:
            raise InputFileError(self.path, "no such session file") from None
        except IsADirectoryError:
            raise InputFileError(self.path, "is a directory, not a session file") from None
        except OSError as exc:
            raise InputFileError(self.path, f"cannot read: {exc.strerror or exc}") from None
        if len(self._data) < PREAMBLE.size or not self._data.startswith(MAGIC):
            if len(self._data) < PREAMBLE.size and MAGIC.startswith(self._data[:8]) and self._data:
                raise InputFileError(self.path, "truncated session file (incomplete preamble)")
            raise InputFileError(self.path, "not a posebridge session file (bad magic)")
        _, major, minor, _ = PREAMBLE.unpack_from(self._data)
        if major > FORMAT_VERSION[0]:
            raise InputFileError(self.path, f"session format {major}.{minor} is newer than supported "
                                 f"{FORMAT_VERSION[0]}.x; upgrade posebridge")
        self.version = (major, minor)
        self.good_bytes = PREAMBLE.size
        first = next(self._scan(), None)
        if first is None or first[1].get("kind") != "header":
            why = self.problem or "first record is not a header"
            raise InputFileError(self.path, f"no readable session header ({why})")
        self.header = first[1]
        self._after_header = first[0]

    def _scan(self, offset: int = PREAMBLE.size) -> Iterator[tuple[int, dict]]:
        """Yields (offset after the record, record); sets `problem` at the first bad record."""
        data = self._data
        end = len(data)
        while offset < end:
            if end - offset < RECORD_HEAD.size:
                self._bad(offset, f"truncated record header ({end - offset} of {RECORD_HEAD.size} bytes)")
                return
            length, crc = RECORD_HEAD.unpack_from(data, offset)
            body = offset + RECORD_HEAD.size
            if length > MAX_RECORD_BYTES:
                self._bad(offset, f"corrupt record length {length}")
                return
            if body + length > end:
                self._bad(offset, f"truncated record ({end - body} of {length} bytes)")
                return
            payload = data[body:body + length]
            if zlib.crc32(payload) != crc:
                self._bad(offset, "CRC mismatch (corrupt record)")
                return
            try:
                rec = msgpack.unpackb(payload, raw=False, strict_map_key=False)
            except Exception as exc:  # msgpack raises several types on garbage
                self._bad(offset, f"undecodable record ({type(exc).__name__})")
                return
            if not isinstance(rec, dict) or not isinstance(rec.get("kind"), str):
                self._bad(offset, "record is not a map with a 'kind'")
                return
            offset = body + length
            self.good_bytes = offset
            yield offset, rec

    def _bad(self, offset: int, why: str) -> None:
        self.problem = (f"{why} at byte {offset} of {len(self._data)}; "
                        f"the {self.records} records before it are intact")
        log.warning("%s: %s", self.path, self.problem)

    def __iter__(self) -> Iterator[dict]:
        """Records after the header (frame, event, end...), in file order."""
        self.problem = None
        self.complete = False
        self.records = 0
        for _, rec in self._scan(self._after_header):
            self.records += 1
            if rec["kind"] == "end":
                self.complete = True
            yield rec

    def frames(self) -> Iterator[dict]:
        """Only the frame records."""
        return (r for r in self if r["kind"] == "frame")

    def summary(self) -> dict:
        """Counts and time span (reads the whole file)."""
        kinds: dict[str, int] = {}
        t = []
        for rec in self:
            kinds[rec["kind"]] = kinds.get(rec["kind"], 0) + 1
            if rec["kind"] == "frame":
                t.append(rec["t_capture"])
        return {"path": str(self.path), "version": ".".join(map(str, self.version)), "records": kinds,
                "duration_s": (t[-1] - t[0]) if t else 0.0, "complete": self.complete,
                "problem": self.problem, "video": self.header.get("video", "none")}


def read_session(path: str | os.PathLike) -> SessionReader:
    return SessionReader(path)


def decode_jpeg(record: dict) -> np.ndarray | None:
    """The frame image of a frame record (BGR), or None when the session has no video."""
    data = record.get("jpeg")
    if not data:
        return None
    import cv2

    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def paced(frames: Iterable[dict], speed: float = 1.0, clock: Callable[[], float] = time.time,
          sleep: Callable[[float], None] = time.sleep) -> Iterator[tuple[dict, float]]:
    """Frame records at their original pace (`speed` x faster; 0 = as fast as possible), with the
    capture time shifted to now: yields (record, t_capture_now)."""
    t0_rec = t0_wall = None
    for rec in frames:
        if t0_rec is None:
            t0_rec, t0_wall = rec["t_capture"], clock()
        offset = rec["t_capture"] - t0_rec
        if speed and speed > 0:
            due = t0_wall + offset / speed
            delay = due - clock()
            if delay > 0:
                sleep(delay)
            yield rec, due
        else:
            yield rec, t0_wall + offset


def refilter(frames: Iterable[dict], config=None, all_faces: bool = False) -> Iterator[tuple[dict, list]]:
    """Run fresh filters (posebridge.filtering.kalman) over the recorded raw estimates with capture times.

    Primary mode: one stream fed the first face of each frame (None when no face). `all_faces`: one
    stream per face_id. Yields (record, [(face_id, FilterOutput), ...])."""
    from posebridge.filtering.kalman import create_filter

    streams: dict[int, Any] = {}
    for rec in frames:
        t = rec["t_capture"]
        faces = rec.get("faces") or []
        outs = []
        if not all_faces:
            f = streams.setdefault(-1, create_filter(config))
            face = faces[0] if faces else None
            out = f.update(t, face["raw"], face.get("std")) if face and face.get("raw") is not None \
                else f.update(t, None, None)
            outs.append((int(face["face_id"]) if face else -1, out))
        else:
            seen = set()
            for face in faces:
                fid = int(face.get("face_id", -1))
                seen.add(fid)
                f = streams.setdefault(fid, create_filter(config))
                outs.append((fid, f.update(t, face.get("raw"), face.get("std"))))
            for fid in [k for k in streams if k not in seen]:
                out = streams[fid].update(t, None, None)
                outs.append((fid, out))
                if out.lost:
                    del streams[fid]
        yield rec, outs
