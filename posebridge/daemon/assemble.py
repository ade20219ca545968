"""Building the daemon from a `ServeConfig`: open the source, load the model, create the detector and
tracker, bind the publisher, open the extra outputs (`[vmc]`, `[opentrack]`), the session file, the
control socket and the live page (`[view]`), in that order, closing what was opened when a later part
fails. Nothing here runs per frame."""

from __future__ import annotations

from pathlib import Path

from posebridge import validation as v
from posebridge.config import ServeConfig
from posebridge.daemon.pipeline import Pipeline

TRACKER_OWN = ("detector", "timer", "redetect_every", "detect_in_thread")


def limit_image_threads(threads: int) -> None:
    """OpenCV's own pool (resize, colour conversion, decoding) follows `model.threads`: on a game
    machine the daemon should stay on the cores it was given (docs/speed.md measures the difference)."""
    if threads > 0:
        import cv2

        cv2.setNumThreads(threads)


def build_pipeline(cfg: ServeConfig) -> Pipeline:
    """Open everything the config names (see the module docstring)."""
    from posebridge.faces.detectors import create_detector
    from posebridge.faces.tracker import FaceTracker
    from posebridge.inference.estimator import Estimator
    from posebridge.output.transport import Publisher
    from posebridge.sources import open_source

    limit_image_threads(cfg.model.threads)
    if cfg.model.backend == "onnx-int8":
        from posebridge.extras import require

        require("convert", "model.backend = onnx-int8 (quantizing on first use)", ("onnx",))
    opened: list = []
    try:
        # The source first: "no camera" is reported at once, before the model loads.
        loop = {"loop": True} if cfg.source.loop else {}  # a camera refuses the option in one line
        source = open_source(cfg.source.spec, realtime=cfg.source.realtime, **loop)
        opened.append(source)
        estimator = Estimator.load(cfg.model.name or None, device=cfg.model.device, backend=cfg.model.backend,
                                   zooms=cfg.model.zooms or None, threads=cfg.model.threads,
                                   flip=cfg.model.flip)
        detector = create_detector(cfg.faces.detector, **cfg.faces.options)
        tracker = make_tracker(FaceTracker, detector, cfg)
        opened.append(tracker)
        keys = None
        if cfg.security.keys:
            from posebridge.output.security import load_server

            keys = load_server(Path(cfg.security.keys).expanduser())
        publisher = Publisher(cfg.publish.address, hwm=cfg.publish.hwm, keys=keys)
        opened.append(publisher)
        sinks = build_sinks(cfg)
        opened.extend(sinks)
        recorder = None
        if cfg.record.path:
            recorder = open_recorder(cfg, estimator.meta)
            opened.append(recorder)
        pipe = Pipeline(cfg, source, tracker, estimator, publisher, recorder,
                        model_name=cfg.model.name or estimator.meta.name, sinks=sinks)
        opened = [pipe]  # from here on the pipeline closes every part (control, page included)
        pipe.streams.set_position(cfg.position)
        if cfg.control.enabled:
            from posebridge.daemon.control_handlers import start_control

            pipe.attach(control=start_control(pipe, cfg.control.address, keys))
        if cfg.view.enabled:
            from posebridge.view.server import start_view

            pipe.attach(view=start_view(pipe, cfg.view))
        return pipe
    except BaseException:
        for part in reversed(opened):
            part.close()
        raise


def build_sinks(cfg: ServeConfig) -> list:
    """The extra outputs the config names, in a fixed order (VMC, opentrack); [] when none. A bad or
    unresolvable destination is a ConfigError before anything is sent."""
    sinks: list = []
    try:
        if cfg.vmc.address:
            from posebridge.output.vmc import VmcSink

            sinks.append(VmcSink(cfg.vmc.address, position_to=cfg.vmc.position_to,
                                 position_scale=cfg.vmc.position_scale,
                                 head_local_position=cfg.vmc.head_local_position))
        if cfg.opentrack.address:
            from posebridge.output.opentrack import OpentrackSink

            sinks.append(OpentrackSink(cfg.opentrack.address))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks


def make_tracker(tracker_cls, detector, cfg: ServeConfig):
    """The face tracker with `faces.redetect_every`, `faces.detect_in_thread` and the `[faces.tracker]`
    options (checked by name)."""
    v.check_options(tracker_cls, cfg.faces.tracker,
                    lambda key, valid: f"faces.tracker.{key}: unknown option (valid: {valid})", TRACKER_OWN)
    return tracker_cls(detector, redetect_every=cfg.faces.redetect_every,
                       detect_in_thread=cfg.faces.detect_in_thread, **cfg.faces.tracker)


def open_recorder(cfg: ServeConfig, meta):
    from posebridge.formats.session_file import SessionWriter

    header = {"config": cfg.to_dict(), "model": meta.to_dict(), "source": cfg.source.spec}
    return SessionWriter(cfg.record.path, header=header, video=cfg.record.video,
                         overwrite=cfg.record.overwrite)
