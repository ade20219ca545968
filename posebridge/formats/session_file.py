"""Session files (docs/session-format.md): a 16-byte preamble, then append-only records
`[u32 length][u32 crc32][msgpack map]`, each written with one write() call, so a kill -9 leaves every
complete record readable and at most a truncated tail, which the reader reports instead of failing.

Writer: `SessionWriter(path, header={...}, video=False)`, `write_frame(...)`, `write_event(...)`,
`close()`. Reader: `SessionReader(path)` iterates records and reports `problem` (truncated/corrupt
tail) and `complete` (an `end` record was seen). Replaying is posebridge.commands.replay.
"""

from __future__ import annotations

import errno
import io
import logging
import math
import os
import struct
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from posebridge.errors import InputFileError, PoseBridgeError
from posebridge.formats.plain import plain

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
    return _frame(msgpack.packb(record, use_bin_type=True, use_single_float=False, default=plain))


def _frame(payload: bytes) -> bytes:
    """A record on disk: length, CRC, payload."""
    return RECORD_HEAD.pack(len(payload), zlib.crc32(payload)) + payload


def _pack_map(record: dict, raw_arrays: dict[str, list[bytes]]) -> bytes:
    """A msgpack map of `record`'s items followed by `raw_arrays`, whose values are arrays of elements
    that are already msgpack-encoded (spliced in unchanged)."""
    packer = msgpack.Packer(use_bin_type=True, use_single_float=False, default=plain)
    parts = [packer.pack_map_header(len(record) + len(raw_arrays))]
    for key, value in record.items():
        parts += [packer.pack(key), packer.pack(value)]
    for key, items in raw_arrays.items():
        parts += [packer.pack(key), packer.pack_array_header(len(items)), *items]
    return b"".join(parts)


class SessionWriter:
    """Writes a session file; every record is one write() of its full bytes (flushed per record).

    `video=True` stores each frame's image (passed as `image=` to `write_frame`) as JPEG bytes in the
    frame record. `fsync=True` also fsyncs each record (survives power loss, not just kill -9).
    On a write error (ENOSPC...) the partial record is cut off again where possible, the writer stops,
    and SessionWriteError says how many records are safe; later writes raise the same error. An
    existing file is refused unless `overwrite`; when even the header cannot be written the file is
    removed again (no empty file pretends to be a recording).
    """

    def __init__(self, path: str | os.PathLike, header: dict | None = None, video: bool = False,
                 jpeg_quality: int = 85, fsync: bool = False, overwrite: bool = False) -> None:
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
            raise SessionWriteError(f"{self.path}: already exists; choose another name or pass --overwrite "
                                    "(record.overwrite = true) to replace it") from None
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise SessionWriteError(f"{self.path}: cannot create session file: {why}") from None
        head = {"kind": "header", "format": "posebridge-session", "version": list(FORMAT_VERSION),
                "created": time.time(), "video": "jpeg" if video else "none"}
        head.update(header or {})
        try:
            import posebridge

            head.setdefault("posebridge", getattr(posebridge, "__version__", ""))
        except ImportError:  # pragma: no cover
            pass
        try:
            self._write(PREAMBLE.pack(MAGIC, *FORMAT_VERSION, 0) + _pack(head))
            self.records += 1
        except SessionWriteError:
            self.path.unlink(missing_ok=True)
            raise SessionWriteError(f"{self.path}: cannot write the session header ({self.fail_reason}); "
                                    "nothing was recorded") from None

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
        self.fail_reason = what
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
                    payloads: list[bytes] | None = None, **extra: Any) -> None:
        """One processed frame: raw estimates per face (`face_id`, `box`, `raw`, `std`), the published
        messages, per-stage timings in ms, and with `video=True` the frame as JPEG.

        The messages are given either as PoseMessages / wire maps (`messages`), or, from the daemon, as
        the msgpack payloads already sent on the wire (`payloads`): those bytes are copied into the
        record as they are (a msgpack map is a valid element of the record's `messages` array), so the
        file holds exactly what subscribers received and nothing is encoded twice."""
        rec: dict[str, Any] = {
            "kind": "frame", "index": int(frame_index), "t_capture": float(t_capture),
            "frame": [int(v) for v in frame_size], "faces": list(faces or []),
        }
        if payloads is None:
            rec["messages"] = [m.to_map() if hasattr(m, "to_map") else m for m in (messages or [])]
        rec["timings"] = {k: float(v) for k, v in (timings or {}).items()}
        if self.video and image is not None:
            import cv2

            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if ok:
                rec["jpeg"] = buf.tobytes()
        rec.update(extra)
        if payloads is None:
            self.write_record(rec)
        else:
            self._write(_frame(_pack_map(rec, {"messages": payloads})))
            self.records += 1
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
    """Reads a session file from disk, record by record (the file is never loaded whole).

    Iterating yields records (dicts) after the header. A damaged record (bad length, CRC mismatch,
    undecodable or not a map with a `kind`) is skipped: the reader resynchronises at the next intact
    record, and counts the damaged regions (`damaged`) and their bytes (`skipped_bytes`); `problem`
    describes the first. `frames()` also type-checks each frame record (`check_frame`) and skips, counts
    (`invalid_frames`) and reports ill-typed ones. Raises InputFileError only when nothing is usable:
    missing file, not a session, newer major format, or no readable header record.
    """

    path: Path
    header: dict  # the header record
    problem: str | None  # the first damaged part, described; None when the file is whole
    complete: bool  # an `end` record was seen (clean shutdown)
    records: int  # records read after the header
    good_bytes: int  # offset where the last intact record read so far ends

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._reset()
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as fh:
                pre = fh.read(PREAMBLE.size)
        except FileNotFoundError:
            raise InputFileError(self.path, "no such session file") from None
        except IsADirectoryError:
            raise InputFileError(self.path, "is a directory, not a session file") from None
        except OSError as exc:
            raise InputFileError(self.path, f"cannot read: {exc.strerror or exc}") from None
        if len(pre) < PREAMBLE.size or not pre.startswith(MAGIC):
            if len(pre) < PREAMBLE.size and pre and MAGIC.startswith(pre[:8]):
                raise InputFileError(self.path, "truncated session file (incomplete preamble)")
            raise InputFileError(self.path, "not a posebridge session file (bad magic)")
        _, major, minor, _ = PREAMBLE.unpack_from(pre)
        if major > FORMAT_VERSION[0]:
            raise InputFileError(self.path, f"session format {major}.{minor} is newer than supported "
                                 f"{FORMAT_VERSION[0]}.x; upgrade posebridge")
        self.version = (major, minor)
        self.size = size
        with open(self.path, "rb") as fh:
            first = self._read_at(fh, PREAMBLE.size)
        if isinstance(first, str) or first[1].get("kind") != "header":
            why = first if isinstance(first, str) else "first record is not a header"
            raise InputFileError(self.path, f"no readable session header ({why})")
        self.header = first[1]
        self._after_header = first[0]
        self.good_bytes = first[0]

    def _reset(self) -> None:
        self.problem = None
        self.complete = False
        self.records = 0
        self.damaged = 0
        self.skipped_bytes = 0
        self.invalid_frames = 0

    def _read_at(self, fh, offset: int) -> tuple[int, dict] | str:
        """(offset after the record, record) for an intact record at `offset`, else why it is not."""
        fh.seek(offset)
        head = fh.read(RECORD_HEAD.size)
        if len(head) < RECORD_HEAD.size:
            return f"truncated record header ({len(head)} of {RECORD_HEAD.size} bytes)"
        length, crc = RECORD_HEAD.unpack(head)
        if length > MAX_RECORD_BYTES:
            return f"corrupt record length {length}"
        if offset + RECORD_HEAD.size + length > self.size:
            return f"truncated record ({self.size - offset - RECORD_HEAD.size} of {length} bytes)"
        body = fh.read(length)
        if zlib.crc32(body) != crc:
            return "CRC mismatch (corrupt record)"
        try:
            rec = msgpack.unpackb(body, raw=False, strict_map_key=False)
        except Exception as exc:  # msgpack raises several types on garbage
            return f"undecodable record ({type(exc).__name__})"
        if not isinstance(rec, dict) or not isinstance(rec.get("kind"), str):
            return "record is not a map with a 'kind'"
        return offset + RECORD_HEAD.size + length, rec

    def _resync(self, fh, offset: int) -> int | None:
        """The offset of the next intact record after a damaged one at `offset` (None: there is none).
        Candidates are positions whose payload starts like a msgpack map; each is checked by CRC."""
        pos = offset + 1
        chunk = 1 << 20
        while pos + RECORD_HEAD.size < self.size:
            fh.seek(pos)
            window = fh.read(chunk + RECORD_HEAD.size + 1)
            for k in range(min(chunk, len(window) - RECORD_HEAD.size - 1)):
                b = window[k + RECORD_HEAD.size]
                if not (0x80 <= b <= 0x8F or b in (0xDE, 0xDF)):
                    continue
                if not isinstance(self._read_at(fh, pos + k), str):
                    return pos + k
            pos += chunk
        return None

    def __iter__(self) -> Iterator[dict]:
        """Records after the header (frame, event, end...), in file order, skipping damaged parts."""
        self._reset()
        with open(self.path, "rb") as fh:
            offset = self._after_header
            while offset < self.size:
                got = self._read_at(fh, offset)
                if isinstance(got, str):
                    nxt = self._resync(fh, offset)
                    end = self.size if nxt is None else nxt
                    self.damaged += 1
                    self.skipped_bytes += end - offset
                    if self.problem is None:
                        self.problem = (f"{got} at byte {offset} of {self.size}; the {self.records} records "
                                        f"before it are intact")
                    log.warning("%s: %s at byte %d; skipped %d bytes to %s", self.path, got, offset,
                                end - offset, "the next intact record" if nxt is not None else "the end")
                    if nxt is None:
                        return
                    offset = nxt
                    continue
                offset, rec = got
                self.good_bytes = offset
                self.records += 1
                if rec["kind"] == "end":
                    self.complete = True
                yield rec

    @property
    def skipped(self) -> int:
        """Damaged regions plus ill-typed frame records skipped so far."""
        return self.damaged + self.invalid_frames

    def checked(self) -> Iterator[dict]:
        """Every record, with each frame record type-checked (`check_frame`): ill-typed frames are
        skipped, counted (`invalid_frames`) and reported."""
        for rec in self:
            if rec["kind"] == "frame":
                why = check_frame(rec)
                if why:
                    self.invalid_frames += 1
                    if self.invalid_frames <= 3:
                        log.warning("%s: skipping an ill-typed frame record: %s", self.path, why)
                    continue
            yield rec

    def frames(self) -> Iterator[dict]:
        """Only the frame records, each type-checked (see `checked`)."""
        return (rec for rec in self.checked() if rec["kind"] == "frame")

    def summary(self) -> dict:
        """Counts and time span (reads the whole file)."""
        kinds: dict[str, int] = {}
        t = []
        for rec in self:
            kinds[rec["kind"]] = kinds.get(rec["kind"], 0) + 1
            if rec["kind"] == "frame" and not check_frame(rec):
                t.append(rec["t_capture"])
        return {"path": str(self.path), "version": ".".join(map(str, self.version)), "records": kinds,
                "duration_s": (t[-1] - t[0]) if t else 0.0, "complete": self.complete,
                "problem": self.problem, "damaged": self.damaged, "video": self.header.get("video", "none")}


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _numbers(x: Any, n: int) -> bool:
    return isinstance(x, list) and len(x) == n and all(_finite(v) for v in x)


def check_frame(rec: dict) -> str:
    """Why a frame record is ill-typed ("" when it is fine): the fields replay and the session source
    use must have their documented types (docs/session-format.md)."""
    if not isinstance(rec.get("index"), int) or isinstance(rec.get("index"), bool):
        return "'index' is not an integer"
    if not _finite(rec.get("t_capture")):
        return "'t_capture' is not a finite number"
    if "frame" in rec and not (isinstance(rec["frame"], list) and len(rec["frame"]) == 2
                               and all(isinstance(v, int) and 0 <= v <= 1 << 16 for v in rec["frame"])):
        return "'frame' is not [width, height]"
    faces = rec.get("faces", [])
    if not isinstance(faces, list):
        return "'faces' is not a list"
    for f in faces:
        if not isinstance(f, dict) or not _numbers(f.get("raw"), 3):
            return "a face has no 'raw' [yaw, pitch, roll] of finite numbers"
        if not isinstance(f.get("face_id", -1), int):
            return "a face's 'face_id' is not an integer"
        if "std" in f and f["std"] is not None and not _numbers(f["std"], 3):
            return "a face's 'std' is not 3 finite numbers"
        if "box" in f and f["box"] is not None and not _numbers(f["box"], 4):
            return "a face's 'box' is not 4 finite numbers"
    if not isinstance(rec.get("messages", []), list):
        return "'messages' is not a list"
    if "jpeg" in rec and not isinstance(rec["jpeg"], bytes):
        return "'jpeg' is not bytes"
    return ""


def read_session(path: str | os.PathLike) -> SessionReader:
    return SessionReader(path)


def decode_jpeg(record: dict) -> np.ndarray | None:
    """The frame image of a frame record (BGR), or None when the session has no video."""
    data = record.get("jpeg")
    if not data:
        return None
    import cv2

    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
