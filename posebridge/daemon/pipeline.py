"""The daemon's per-frame loop, class `Pipeline` (after opentrack's `logic/pipeline.cpp`, hence the name:
it is the loop over already-built parts, not a builder): one `step()` per frame,

    source.read -> tracker.update -> estimator.predict_faces -> streams.update -> encode -> publish (+ record)

each stage timed with `StageTimer` (decode, track, crop, infer, filter, publish; the detector's runs in
its worker thread as `detect`; `latency` = capture -> publish). Every frame publishes at least one
message, so subscribers always know the state: with no face the filter predicts through short
dropouts and then reports the stream lost (`tracked=False`). A frame whose processing raises is
logged (rate-limited) and answered like a frame without a face: the loop never dies on one frame.
The control server (own thread, posebridge.daemon.control_handlers) takes the same lock. With the live
page (`serve --view`, posebridge.view) each frame's image and messages are handed over by reference
(`ViewFeed.offer`, O(1)); drawing and encoding happen in the page's threads, only while a page looks.

Building the parts from a config: posebridge.daemon.assemble.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from posebridge.config import ServeConfig
from posebridge.daemon.signals import install_signal_handlers
from posebridge.daemon.stages import EstimatorStage, PublisherStage, RecorderStage, SinkStage, TrackerStage
from posebridge.filtering.config import config_for_model
from posebridge.filtering.streams import Measurement, StreamSet, StreamUpdate, build_message
from posebridge.formats.protocol import TOPIC_POSE, PoseMessage, payload
from posebridge.sources.base import FrameSource
from posebridge.timing import StageTimer

log = logging.getLogger(__name__)

STAGES = ("decode", "detect", "track", "crop", "infer", "filter", "publish")  # what the loop times, in order
ERROR_LOG_EVERY_S = 5.0  # a failing frame is logged at most this often (each failure is counted)


@dataclass
class FrameResult:
    """What one step produced (tests and the benchmark look at it)."""

    frame_index: int
    t_capture: float
    faces: int
    messages: list[PoseMessage] = field(default_factory=list)


class Pipeline:
    """Owns the parts and runs the loop. Build with `posebridge.daemon.assemble.build_pipeline(cfg)` or
    inject parts (tests)."""

    def __init__(self, cfg: ServeConfig, source: FrameSource, tracker: TrackerStage,
                 estimator: EstimatorStage, publisher: PublisherStage, recorder: RecorderStage | None = None,
                 model_name: str = "", sinks: list[SinkStage] | None = None) -> None:
        meta = getattr(estimator, "meta", None)
        self.cfg = cfg
        self.source = source
        self.tracker = tracker
        self.estimator = estimator
        self.publisher = publisher
        self.recorder = recorder
        self.sinks = list(sinks or [])  # extra outputs (VMC, opentrack), after the ZeroMQ stream
        self.model_name = model_name or (meta.name if meta is not None else "")
        self.filter_config = config_for_model(meta, cfg.filter)
        self.streams = StreamSet(self.filter_config, all_faces=cfg.faces.all_faces)
        self.timer = StageTimer(window=1000)
        self.lock = threading.RLock()
        self.seq = 0
        self.frames = 0
        self.no_frame = 0  # reads that returned nothing in time (camera reconnecting, ...)
        self.frame_errors = 0  # frames whose processing raised (logged, answered as "no face")
        self.jumps = 0  # re-detections asked for because the pose spread jumped
        self.record_error = ""
        self.control = None
        self.view = None  # the live page's server (posebridge.view.server), when serving one
        self._view_feed = None
        self.t_start = time.monotonic()
        self._jump = False
        self._std_mean = 0.0  # running mean of the primary face's spread (uncertainty-jump detection)
        self._frame_times: deque[float] = deque(maxlen=90)
        self._frame_size = (0, 0)
        self._frame_timings: dict[str, float] = {}
        self._stop = threading.Event()
        self._last_log = time.monotonic()
        self._last_error_log = 0.0
        self._closed = False

    def attach(self, control=None, view=None) -> None:
        """Hand the pipeline the servers assembly started for it (posebridge.daemon.assemble): the control
        socket and the live page, which the pipeline closes with itself and feeds frames (the page)."""
        if control is not None:
            self.control = control
        if view is not None:
            self.view, self._view_feed = view, view.feed

    # ----------------------------------------------------------------------------------- the loop

    def step(self) -> FrameResult | None:
        """Process one frame. None at the end of the source; a FrameResult otherwise."""
        t0 = time.perf_counter()
        frame = self.source.read(timeout=0.25)
        decode_ms = (time.perf_counter() - t0) * 1000.0
        if frame is None:
            if self.source.ended:
                return None
            self.no_frame += 1
            with self.lock:  # no frame in time (live source reconnecting): keep subscribers informed
                t = time.time()
                messages = self._publish(t, self.streams.no_frame(t))
                if self._view_feed is not None:
                    self._view_feed.offer(None, messages, 0)
                return FrameResult(-1, t, 0, messages)
        self._frame_timings = {}
        self._add("decode", decode_ms)
        self._add("capture", decode_ms)  # the name docs/protocol.md's status uses
        with self.lock:
            try:
                return self._process(frame)
            except Exception as exc:  # one bad frame must not stop the stream
                self._frame_failed(exc)
                messages = self._publish(frame.t_capture, self.streams.no_frame(frame.t_capture))
                if self._view_feed is not None:
                    self._view_feed.offer(frame.image, messages, 0)
                return FrameResult(frame.index, frame.t_capture, 0, messages)

    def _process(self, frame) -> FrameResult:
        image = frame.image
        self._frame_size = (image.shape[1], image.shape[0])
        # faces
        t0 = time.perf_counter()
        faces = self.tracker.update(image, uncertainty_jump=self._jump)
        self._add("detect" if self.tracker.last_action == "detect" else "track", _ms(t0))
        if self.tracker.last_detect_ms is not None:  # a run of the detector's worker thread
            self.timer.add("detect", self.tracker.last_detect_ms)
        self._jump = False
        chosen = list(faces) if self.cfg.faces.all_faces else faces[:1]
        # inference (timed only on frames with a face; `pose` = crop + infer)
        estimates = []
        if chosen:
            t0 = time.perf_counter()
            spent: dict[str, float] = {}
            estimates = self.estimator.predict_faces(
                [(image, f.box, f.detector) for f in chosen],
                [self.streams.yaw_hint(f.face_id) for f in chosen], timings=spent)
            self._add("crop", spent["crop"])
            self._add("infer", spent["infer"])
            self._add("pose", _ms(t0))
            for f, e in zip(chosen, estimates, strict=True):
                self.tracker.refine(f.face_id, e.next_roi)  # a box head follows the face itself
        self._jump = self._uncertainty_jumped(estimates)
        # filter
        t0 = time.perf_counter()
        updates = self.streams.update(frame.t_capture, [
            Measurement(f.face_id, f.box, e.angles, e.stds) for f, e in zip(chosen, estimates, strict=True)],
            self._frame_size)
        self._add("filter", _ms(t0))
        # protocol + transport (+ the same bytes into the session file)
        t0 = time.perf_counter()
        messages = self._publish(frame.t_capture, updates)
        self._add("publish", _ms(t0))
        t_pub = messages[-1].t_publish if messages else time.time()
        self._add("latency", (t_pub - frame.t_capture) * 1000.0)
        self.frames += 1
        self._frame_times.append(time.monotonic())
        if self.recorder is not None:
            self._record(frame, chosen, estimates)
        if self._view_feed is not None:  # references only: the page draws and encodes in its own threads
            self._view_feed.offer(image, messages, len(faces))
        self._maybe_log()
        return FrameResult(frame.index, frame.t_capture, len(faces), messages)

    def _publish(self, t_capture: float, updates: list[StreamUpdate]) -> list[PoseMessage]:
        """Build, encode (once) and send one message per stream update."""
        out = []
        self._payloads: list[bytes] = []
        mirror = self.cfg.publish.mirror
        for update in updates:
            msg = build_message(update, self.seq, t_capture, time.time(), self._frame_size, mirror)
            data = payload(msg)  # raises on a non-finite number; the filter never produces one
            self.publisher.send((TOPIC_POSE, data))
            for sink in self.sinks:
                try:
                    sink.send(msg)
                except Exception as exc:  # a sink must not raise; if one does, the stream goes on
                    self._frame_failed(exc)
            self._payloads.append(data)
            self.seq += 1
            out.append(msg)
        return out

    def _add(self, stage: str, ms: float) -> None:
        self.timer.add(stage, ms)
        self._frame_timings[stage] = ms

    def _frame_failed(self, exc: Exception) -> None:
        self.frame_errors += 1
        now = time.monotonic()
        if now - self._last_error_log >= ERROR_LOG_EVERY_S:
            self._last_error_log = now
            log.error("frame skipped (%d so far): %s: %s", self.frame_errors, type(exc).__name__, exc,
                      exc_info=log.isEnabledFor(logging.DEBUG))

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

    def _record(self, frame, chosen, estimates) -> None:
        """One session record per frame: raw estimates, the published messages (the same bytes as on the
        wire), this frame's stage times."""
        from posebridge.errors import PoseBridgeError

        try:
            self.recorder.write_frame(
                frame_index=frame.index, t_capture=frame.t_capture, frame_size=self._frame_size,
                faces=[{"face_id": int(f.face_id), "box": [float(v) for v in f.box], "raw": list(e.angles),
                        "std": list(e.stds)} for f, e in zip(chosen, estimates, strict=True)],
                payloads=self._payloads, timings=self._frame_timings,
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
            lat = self.timer.summary().get("latency", {})
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
        """Close the page, control, tracker (its detection worker), publisher (linger 0), the session file
        (finalised) and the source. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for part in (self.view, self.control, self.tracker, self.publisher, *self.sinks, self.recorder,
                     self.source):
            if part is None:
                continue
            try:
                part.close()
            except Exception as exc:  # keep closing the rest
                log.warning("closing %s: %s", type(part).__name__, exc)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
