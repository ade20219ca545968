"""The daemon loop: source -> faces (tracker) -> estimator -> filter -> protocol -> transport.

One `step()` handles one frame, top to bottom, each stage timed with `StageTimer` (decode, detect,
track, crop, infer, filter, publish; plus `latency`, capture -> publish). Every frame publishes at
least one message, so subscribers always know the state: with no face the filter predicts through
short dropouts and then reports the stream lost (`tracked=False`). The control server (own thread)
calls `status`, `recenter` and `set`, which take the same lock as the per-frame work.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from posebridge.config import ServeConfig
from posebridge.timing import StageTimer

log = logging.getLogger(__name__)

NO_FACE = -1
PRIMARY = "primary"


@dataclass
class Stream:
    """One filtered pose stream: the primary face, or one face id in all-faces mode."""

    filt: object
    face_id: int = NO_FACE
    neutral: tuple[float, float, float] | None = None  # recentered neutral pose (None = facing the camera)
    last_std: tuple[float, float, float] = (0.0, 0.0, 0.0)
    last_box: tuple[float, float, float, float] | None = None
    last_angles: tuple[float, float, float] = (0.0, 0.0, 0.0)  # filtered, before recentering
    tracked: bool = False


@dataclass
class FrameResult:
    """What one step produced (tests and the benchmark look at it)."""

    frame_index: int
    t_capture: float
    faces: int
    messages: list = field(default_factory=list)  # PoseMessage objects published this step


class Pipeline:
    """Owns the parts and runs the loop. Build with `Pipeline.from_config(cfg)` or inject parts."""

    def __init__(self, cfg: ServeConfig, source, tracker, estimator, publisher, recorder=None,
                 model_name: str = "") -> None:
        from posebridge.filtering.kalman import config_for_model

        self.cfg = cfg
        self.source = source
        self.tracker = tracker
        self.estimator = estimator
        self.publisher = publisher
        self.recorder = recorder
        self.model_name = model_name or getattr(getattr(estimator, "meta", None), "name", "")
        self.filter_config = config_for_model(getattr(estimator, "meta", None), cfg.filter)
        self.timer = StageTimer(window=1000)
        self.lock = threading.RLock()
        self.streams: dict[object, Stream] = {}
        self.seq = 0
        self.frames = 0
        self.no_frame = 0  # reads that returned nothing in time (camera reconnecting, ...)
        self.jumps = 0  # re-detections asked for because the pose spread jumped
        self._jump = False
        self._std_mean = 0.0  # running mean of the primary face's spread (uncertainty-jump detection)
        self._frame_times: deque[float] = deque(maxlen=90)
        self._frame_size = (0, 0)
        self._stop = threading.Event()
        self._last_log = time.monotonic()
        self.control = None
        self._closed = False
        self._frame_timings: dict[str, float] = {}
        self.record_error = ""
        self._read_takes_timeout: bool | None = None
        self.t_start = time.monotonic()

    # ------------------------------------------------------------------------------------ building

    @classmethod
    def from_config(cls, cfg: ServeConfig) -> Pipeline:
        """Open everything the config names; closes what was opened if a later part fails."""
        from posebridge.faces import create_detector
        from posebridge.faces.tracker import FaceTracker
        from posebridge.inference.estimator import Estimator
        from posebridge.output.transport import Publisher
        from posebridge.sources import open_source

        opened: list = []
        try:
            # The source first: "no camera" is reported at once, before the model loads.
            source = open_source(cfg.source.spec, realtime=cfg.source.realtime)
            opened.append(source)
            set_cpu_threads(cfg.model.threads)
            estimator = Estimator.load(cfg.model.name or None, device=cfg.model.device,
                                       backend=cfg.model.backend, zooms=cfg.model.zooms or None)
            detector = create_detector(cfg.faces.detector, **cfg.faces.options)
            tracker = make_tracker(FaceTracker, detector, cfg)
            publisher = Publisher(cfg.publish.address, hwm=cfg.publish.hwm)
            opened.append(publisher)
            recorder = None
            if cfg.record.path:
                recorder = open_recorder(cfg, estimator)
                opened.append(recorder)
            pipe = cls(cfg, source, tracker, estimator, publisher, recorder,
                       model_name=cfg.model.name or estimator.meta.name)
            if cfg.control.enabled:
                pipe.start_control(cfg.control.address)
            return pipe
        except BaseException:
            for part in reversed(opened):
                part.close()
            raise

    def start_control(self, address: str):
        from posebridge.output.control import ControlServer

        self.control = ControlServer(
            {"status": self.cmd_status, "recenter": self.cmd_recenter, "set": self.cmd_set}, address
        ).start()
        return self.control

    def new_filter(self):
        from posebridge.filtering.kalman import create_filter

        return create_filter(self.filter_config)

    # ----------------------------------------------------------------------------------- the loop

    def read_frame(self, timeout: float = 0.25):
        """The next frame; live sources return None after `timeout` s without one (not the end)."""
        if self._read_takes_timeout is None:
            import inspect

            try:
                self._read_takes_timeout = "timeout" in inspect.signature(self.source.read).parameters
            except (TypeError, ValueError):
                self._read_takes_timeout = False
        return self.source.read(timeout=timeout) if self._read_takes_timeout else self.source.read()

    def step(self) -> FrameResult | None:
        """Process one frame. None at the end of the source; a FrameResult otherwise."""
        t0 = time.perf_counter()
        frame = self.read_frame()
        decode_ms = (time.perf_counter() - t0) * 1000.0
        if frame is None:
            if getattr(self.source, "ended", True):
                return None
            self.no_frame += 1
            with self.lock:  # no frame in time (live source reconnecting): keep subscribers informed
                return self._publish_without_frame(time.time())
        self._frame_timings = {}
        self._add("decode", decode_ms)
        self._add("capture", decode_ms)  # the name docs/protocol.md's status uses
        with self.lock:
            return self._process(frame)

    def _add(self, stage: str, ms: float) -> None:
        self.timer.add(stage, ms)
        self._frame_timings[stage] = ms

    def _process(self, frame) -> FrameResult:
        image = frame.image
        h, w = image.shape[:2]
        self._frame_size = (w, h)
        # faces
        t0 = time.perf_counter()
        faces = self.tracker.update(image, uncertainty_jump=self._jump)
        took = (time.perf_counter() - t0) * 1000.0
        self._add("detect" if tracker_detected(self.tracker) else "track", took)
        self._jump = False
        chosen = list(faces) if self.cfg.faces.all_faces else primary_faces(faces)
        # model (timed only on frames with a face; `pose` = crop + infer)
        estimates = []
        if chosen:
            t0 = time.perf_counter()
            spent: dict[str, float] = {}
            faces_in = [(image, f.box, getattr(f, "detector", "")) for f in chosen]
            hints = [self._yaw_hint(f) for f in chosen]
            estimates = self.estimator.predict_faces(faces_in, hints, timings=spent)
            self._add("crop", spent["crop"])
            self._add("infer", spent["infer"])
            self._add("pose", (time.perf_counter() - t0) * 1000.0)
        self._jump = self._uncertainty_jumped(estimates)
        # filter
        t0 = time.perf_counter()
        outputs = self._filter(frame.t_capture, chosen, estimates)
        self._add("filter", (time.perf_counter() - t0) * 1000.0)
        # protocol + transport
        t0 = time.perf_counter()
        messages = [self._publish(frame.t_capture, *o) for o in outputs]
        self._add("publish", (time.perf_counter() - t0) * 1000.0)
        t_pub = messages[-1].t_publish if messages else time.time()
        self._add("latency", (t_pub - frame.t_capture) * 1000.0)
        self.frames += 1
        self._frame_times.append(time.monotonic())
        if self.recorder is not None:
            self._record(frame, chosen, estimates, messages)
        self._maybe_log()
        return FrameResult(frame.index, frame.t_capture, len(faces), messages)

    def _yaw_hint(self, face) -> float | None:
        """The tracked face's filtered yaw from the previous frame (places a yaw-aware crop in one pass);
        None for a new or lost face."""
        key = face.face_id if self.cfg.faces.all_faces else PRIMARY
        stream = self.streams.get(key)
        if stream is None or not stream.tracked or stream.face_id != face.face_id:
            return None
        return stream.last_angles[0]

    def _filter(self, t: float, chosen: list, estimates: list) -> list[tuple]:
        """Update the streams; returns (stream, raw angles | None, stds | None, box | None) to publish."""
        out = []
        if not self.cfg.faces.all_faces:
            stream = self.streams.get(PRIMARY) or self.streams.setdefault(PRIMARY, Stream(self.new_filter()))
            if chosen:
                out.append(self._update(stream, t, chosen[0], estimates[0]))
            else:
                out.append(self._update(stream, t, None, None))
            return out
        seen = set()
        for face, est in zip(chosen, estimates, strict=True):
            seen.add(face.face_id)
            stream = self.streams.get(face.face_id)
            if stream is None:
                stream = self.streams[face.face_id] = Stream(self.new_filter(), face_id=face.face_id)
            out.append(self._update(stream, t, face, est))
        for key in [k for k in self.streams if k not in seen]:
            item = self._update(self.streams[key], t, None, None)
            out.append(item)
            if not item[0].tracked:  # reported lost once; forget it
                del self.streams[key]
        if not out:
            out.append(self._lost_heartbeat())
        return out

    def _update(self, stream: Stream, t: float, face, est) -> tuple:
        if est is None:
            res = stream.filt.update(t, None, None)
            raw = None
            stream.last_std = tuple(float(v) for v in res.stds)  # the filter's predicted spread
        else:
            raw = est.angles
            res = stream.filt.update(t, raw, est.stds)
            stream.face_id = face.face_id
            stream.last_std = est.stds
            stream.last_box = tuple(float(v) for v in face.box)
        stream.tracked = bool(res.tracked)
        stream.last_angles = tuple(float(a) for a in res.angles)
        if not stream.tracked:
            stream.face_id = NO_FACE
            stream.last_box = None
        return (stream, raw, stream.last_box if est is not None else None)

    def _lost_heartbeat(self) -> tuple:
        return (Stream(filt=None), None, None)

    def _publish_without_frame(self, t: float) -> FrameResult:
        outputs = []
        for key in list(self.streams):
            outputs.append(self._update(self.streams[key], t, None, None))
        if not outputs:
            outputs.append(self._lost_heartbeat())
        messages = [self._publish(t, *o) for o in outputs]
        return FrameResult(-1, t, 0, messages)

    def _publish(self, t_capture: float, stream: Stream, raw, box):
        from posebridge.output.protocol import SCHEMA_VERSION, PoseMessage, encode

        q = output_quaternion(stream.last_angles, stream.neutral, self.cfg.publish.mirror)
        msg = PoseMessage(
            v=SCHEMA_VERSION,
            seq=self.seq,
            t_capture=float(t_capture),
            t_publish=time.time(),
            face_id=int(stream.face_id if stream.tracked else NO_FACE),
            tracked=bool(stream.tracked),
            q=[float(v) for v in q],
            euler=[float(v) for v in stream.last_angles],
            raw=None if raw is None else [float(v) for v in raw],
            std=[float(v) for v in stream.last_std],
            box=None if box is None else [float(v) for v in box],
            frame=[int(self._frame_size[0]), int(self._frame_size[1])],
        )
        self.publisher.send(encode(msg))
        self.seq += 1
        return msg

    def _uncertainty_jumped(self, estimates: list) -> bool:
        """True when the primary face's mean spread jumps well above its running mean."""
        if not estimates:
            return False
        s = float(sum(estimates[0].stds) / 3.0)
        base = self._std_mean if self._std_mean > 0 else s
        jumped = s > base * self.cfg.faces.jump_ratio and s - base > self.cfg.faces.jump_min_deg
        self._std_mean = 0.9 * base + 0.1 * s
        if jumped:
            self.jumps += 1
        return jumped

    def _record(self, frame, chosen, estimates, messages) -> None:
        """One session record per frame: raw estimates, published messages, this frame's stage times."""
        from posebridge.errors import PoseBridgeError

        try:
            self.recorder.write_frame(
                frame_index=frame.index,
                t_capture=frame.t_capture,
                frame_size=list(self._frame_size),
                faces=[{"face_id": int(f.face_id), "box": [float(v) for v in f.box], "raw": list(e.angles),
                        "std": list(e.stds)} for f, e in zip(chosen, estimates, strict=True)],
                messages=messages,
                timings=dict(self._frame_timings),
                image=frame.image if self.cfg.record.video else None,
            )
        except PoseBridgeError as exc:  # disk full...: keep streaming, stop recording, say it once
            log.error("recording stopped: %s", exc)
            self.record_error = str(exc)
            self.recorder.close()
            self.recorder = None

    def record_event(self, name: str, **detail) -> None:
        if self.recorder is not None:
            try:
                self.recorder.write_event(name, **detail)
            except Exception as exc:  # recording problems never stop the daemon
                log.warning("recording event %s: %s", name, exc)

    def _maybe_log(self) -> None:
        every = self.cfg.run.log_every_s
        now = time.monotonic()
        if every and now - self._last_log >= every:
            self._last_log = now
            s = self.timer.summary()
            lat = s.get("latency", {})
            log.info("%.1f fps, capture->publish median %.1f ms p99 %.1f ms, %d frames, %d messages",
                     self.fps(), lat.get("median_ms", float("nan")), lat.get("p99_ms", float("nan")),
                     self.frames, self.seq)

    def fps(self) -> float:
        t = self._frame_times
        if len(t) < 2 or t[-1] <= t[0]:
            return 0.0
        return (len(t) - 1) / (t[-1] - t[0])

    # ------------------------------------------------------------------------------ run and stop

    def run(self, on_step: Callable[[FrameResult], None] | None = None) -> int:
        """Loop until the source ends, `max_frames`, `stop()`, Ctrl-C or SIGTERM. Always closes."""
        restore = install_signal_handlers(self.stop)
        try:
            wait = self.cfg.run.wait_subscriber_s
            if wait > 0 and not self.publisher.wait_for_subscriber(wait, stop=self._stop):
                log.info("no subscriber after %.1f s; streaming anyway", wait)
            while not self._stop.is_set():
                result = self.step()
                if result is None:
                    break
                if on_step is not None:
                    on_step(result)
                if self.cfg.run.max_frames and self.frames >= self.cfg.run.max_frames:
                    break
        except KeyboardInterrupt:
            log.info("interrupted")
        finally:
            restore()
            self.close()
        return 0

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Close control, publisher (linger 0), the session file (finalised) and the source. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for part in (self.control, self.publisher, self.recorder, self.source):
            if part is None:
                continue
            try:
                part.close()
            except Exception as exc:  # keep closing the rest
                log.warning("closing %s: %s", type(part).__name__, exc)

    # ---------------------------------------------------------------------------- control handlers

    def cmd_status(self, req: dict) -> dict:
        with self.lock:
            src = self.source.stats() if hasattr(self.source, "stats") else {}
            pub = self.publisher.stats()
            drops = {"source": int(src.get("dropped", 0) or 0), "publish_refused": int(pub.get("refused", 0)),
                     "no_frame": self.no_frame}
            return {
                "fps": self.fps(),
                "stages": self.timer.summary(),
                "drops": drops["source"] + drops["publish_refused"],
                "drops_detail": drops,
                "frames": self.frames,
                "model": self.model_name,
                "source": getattr(self.source, "name", str(self.cfg.source.spec)),
                "tracked": any(s.tracked for s in self.streams.values()),
                "seq": self.seq,
                "filter": filter_params(self.filter_config),
                "mirror": self.cfg.publish.mirror,
                "uptime_s": time.monotonic() - self.t_start,
                "neutral": self.neutral(),
                "source_stats": src,
                "publisher": pub,
                "tracker": self.tracker.stats() if hasattr(self.tracker, "stats") else {},
                "redetect_jumps": self.jumps,
                "record": {"path": self.cfg.record.path, "error": self.record_error,
                           "frames": getattr(self.recorder, "frames", 0)},
            }

    def neutral(self) -> list[float] | None:
        stream = self.streams.get(PRIMARY) or next(iter(self.streams.values()), None)
        return list(stream.neutral) if stream is not None and stream.neutral is not None else None

    def recenter(self, reset: bool = False) -> list[float] | None:
        """The current filtered pose of every tracked stream becomes its neutral pose (`reset`: back to
        facing the camera). Only `q` changes; `euler` and `raw` stay absolute."""
        with self.lock:
            if reset:
                for stream in self.streams.values():
                    stream.neutral = None
                self.record_event("recenter", neutral=None)
                return None
            tracked = [st for st in self.streams.values() if st.tracked]
            if not tracked:
                raise ValueError("recenter: no tracked face")
            for stream in tracked:
                stream.neutral = stream.last_angles
            self.record_event("recenter", neutral=self.neutral())
            return self.neutral()

    def cmd_recenter(self, req: dict) -> dict:
        return {"neutral": self.recenter(reset=bool(req.get("reset", False)))}

    def settable(self) -> dict:
        out = filter_params(self.filter_config)
        out["mirror"] = self.cfg.publish.mirror
        return out

    def cmd_set(self, req: dict) -> dict:
        params = req.get("params")
        if not isinstance(params, dict) or not params:
            raise ValueError("set: 'params' must be a non-empty map of filter parameters (or mirror)")
        self.set_params(**params)
        return {"params": self.settable()}

    def set_params(self, **params) -> None:
        """Change filter parameters (and `mirror`) at run time, all or nothing."""
        params = dict(params)
        known = set(filter_params(self.filter_config)) | {"mirror"}
        for name in params:
            if name not in known:
                raise ValueError(f"set: unknown parameter {name!r} (known: {', '.join(sorted(known))})")
        mirror = params.pop("mirror", None)
        if mirror is not None and not isinstance(mirror, bool):
            raise ValueError(f"set: mirror must be true or false, got {mirror!r}")
        with self.lock:
            new_config = self.filter_config.replace(**params) if params else self.filter_config  # validates
            self.filter_config = new_config
            for stream in self.streams.values():
                if stream.filt is not None and params:
                    stream.filt.set(**params)
            if mirror is not None:
                self.cfg.publish.mirror = mirror
            self.record_event("set", params=self.settable())


# ------------------------------------------------------------------------------------------ helpers


def output_quaternion(angles, neutral, mirror: bool) -> list[float]:
    """Filtered dataset angles -> the Unity quaternion `q`, relative to the neutral pose if recentered
    (`neutral^-1 * q`, posebridge.output.rotation.recenter). `euler`/`raw` stay absolute (docs/protocol.md)."""
    from posebridge.output.rotation import recenter, unity_quaternion

    q = unity_quaternion(*angles, mirror=mirror)
    if neutral is not None:
        q = recenter(q, unity_quaternion(*neutral, mirror=mirror))
    return [float(v) for v in q]


def make_tracker(tracker_cls, detector, cfg: ServeConfig):
    """The face tracker with `faces.redetect_every` and the `[faces.tracker]` options (checked by name)."""
    import inspect

    from posebridge.errors import ConfigError

    params = inspect.signature(tracker_cls).parameters
    for key in cfg.faces.tracker:
        if key not in params or key in ("detector", "timer", "redetect_every"):
            allowed = ", ".join(k for k in params if k not in ("detector", "timer", "redetect_every"))
            raise ConfigError(f"faces.tracker.{key}: unknown option (valid: {allowed})")
    return tracker_cls(detector, redetect_every=cfg.faces.redetect_every, **cfg.faces.tracker)


def set_cpu_threads(n: int) -> None:
    """Intra-op threads for CPU inference (0 keeps the library default). One crop per frame gains
    little from more threads, and on a busy CPU extra threads cost far more than they give."""
    if n > 0:
        import torch

        torch.set_num_threads(n)


def tracker_detected(tracker) -> bool:
    """Whether the tracker ran its detector on the last update (for the detect/track timing split)."""
    return getattr(tracker, "last_action", "detect") != "track"


def primary_faces(faces: list) -> list:
    """The tracker returns the primary face (largest / nearest the centre, sticky id) first."""
    return list(faces[:1])


def filter_params(config) -> dict:
    import dataclasses

    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def open_recorder(cfg: ServeConfig, estimator):
    from posebridge.output.session_file import SessionWriter

    header = {"config": cfg.to_dict(), "model": estimator.meta.to_dict(), "source": cfg.source.spec}
    return SessionWriter(cfg.record.path, header=header, video=cfg.record.video)


def install_signal_handlers(stop: Callable[[], None]) -> Callable[[], None]:
    """SIGTERM (and SIGINT) call `stop` so the loop ends and closes cleanly; returns a restore function."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}

    def handler(signum, _frame):
        log.info("signal %d: shutting down", signum)
        stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
