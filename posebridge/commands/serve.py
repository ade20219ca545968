"""`posebridge serve`: run the daemon (source -> faces -> model -> filter -> ZeroMQ)."""

from __future__ import annotations

import argparse
import logging

from posebridge.config import (
    DEFAULT_VIEW,
    ServeConfig,
    add_filter_flags,
    apply_overrides,
    filter_flags,
    load_config,
    set_option,
    validate,
    validate_filter_params,
)

log = logging.getLogger("posebridge.serve")


def add_serve_arguments(p: argparse.ArgumentParser, source_required: bool = False) -> None:
    """Options shared by `serve` and `record`; each also has a TOML key (examples/posebridge.toml)."""
    p.add_argument("--source", required=source_required,
                   help="camera index (0), /dev/videoN, video, image folder or session file [source.spec]")
    p.add_argument("--model", help="model name or checkpoint path (default: the default model) [model.name]")
    p.add_argument("--config", metavar="TOML", help="posebridge.toml with any of the options below")
    p.add_argument("--record", metavar="FILE", help="write a session file of every frame [record.path]")
    p.add_argument("--overwrite", action="store_true", default=None,
                   help="replace the --record file if it exists [record.overwrite]")
    p.add_argument("--keys", metavar="DIR", help="CURVE key folder from `posebridge keys` for the PUB and "
                   "control sockets (docs/daemon.md, Security) [security.keys]")
    p.add_argument("--fast", action="store_true",
                   help="read files as fast as possible, not at their frame rate [source.realtime=false]")
    p.add_argument("--loop", action="store_true", default=None,
                   help="files: start again at the end [source.loop]")
    p.add_argument("--device", help="auto, cpu, cuda[:N], tensorrt [model.device]")
    p.add_argument("--backend", help="onnx (default), onnx-int8, torch, torch-bf16, torch-compile; the torch "
                   "ones need posebridge[torch] [model.backend]")
    p.add_argument("--threads", type=int, help="inference threads, 0 = all cores (default 1) [model.threads]")
    p.add_argument("--detector", help="face detector name [faces.detector]")
    p.add_argument("--all-faces", action="store_true", default=None,
                   help="publish every face, not only the primary one [faces.all_faces]")
    p.add_argument("--mirror", action="store_true", default=None, help="selfie view [publish.mirror]")
    p.add_argument("--publish", metavar="ADDR", help="PUB bind address, default tcp://127.0.0.1:5570")
    p.add_argument("--control", metavar="ADDR", help="control REP bind address, default tcp://127.0.0.1:5571")
    p.add_argument("--no-control", action="store_true", help="do not open the control socket")
    p.add_argument("--view", nargs="?", const=DEFAULT_VIEW, metavar="[HOST:]PORT",
                   help=f"serve the live page (camera preview, 3D head, plots, controls) in a browser, "
                        f"default {DEFAULT_VIEW} (docs/daemon.md, The live page) [view.address]")
    p.add_argument("--vmc", metavar="HOST:PORT", help="also send VMC protocol (OSC/UDP) to an avatar app, "
                   "e.g. 127.0.0.1:39539 (default port 39539; docs/interop.md) [vmc.address]")
    p.add_argument("--opentrack", metavar="HOST:PORT", help="also send opentrack 'UDP over network' "
                   "packets, e.g. 127.0.0.1:4242 (default port 4242; docs/interop.md) [opentrack.address]")
    p.add_argument("--max-frames", type=int, help="stop after N frames [run.max_frames]")
    p.add_argument("--wait-subscriber", type=float, metavar="S",
                   help="wait up to S seconds for a subscriber before streaming [run.wait_subscriber_s]")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any option by its TOML path, e.g. --set filter.lost_after_s=0.5 (repeatable)")
    add_filter_flags(p)  # --filter.NAME VALUE for each filter parameter


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """Defaults < TOML file < command-line flags."""
    cfg = load_config(args.config)
    flags = {
        "source.spec": args.source,
        "source.loop": args.loop,
        "model.name": args.model,
        "record.path": args.record,
        "record.overwrite": args.overwrite,
        "security.keys": args.keys,
        "model.device": args.device,
        "model.backend": args.backend,
        "model.threads": args.threads,
        "faces.detector": args.detector,
        "faces.all_faces": args.all_faces,
        "publish.mirror": args.mirror,
        "publish.address": args.publish,
        "control.address": args.control,
        "run.max_frames": args.max_frames,
        "run.wait_subscriber_s": args.wait_subscriber,
        "vmc.address": args.vmc,
        "opentrack.address": args.opentrack,
    }
    for key, value in flags.items():
        if value is not None:
            set_option(cfg, key, value)
    if args.fast:
        cfg.source.realtime = False
    if args.no_control:
        cfg.control.enabled = False
    if args.view is not None:
        cfg.view.enabled, cfg.view.address = True, args.view
    apply_overrides(cfg, args.set)
    params = filter_flags(args)
    validate_filter_params(params, prefix="--filter.")
    cfg.filter.update(params)
    return validate(cfg)  # bad values fail now, before the camera and model open


def serve(cfg: ServeConfig) -> int:
    from posebridge.daemon.assemble import build_pipeline

    pipe = build_pipeline(cfg)
    ctl = f", control {pipe.control.address}" if pipe.control else ""
    ctl += f", live page {pipe.view.url}" if pipe.view else ""
    rec = f", recording to {cfg.record.path}" if cfg.record.path else ""
    out = "".join(f", {sink.name} to {sink.destination}" for sink in pipe.sinks)
    log.info("serving %s with model %s: publishing on %s%s%s%s (Ctrl-C to stop)",
             getattr(pipe.source, "name", cfg.source.spec), pipe.model_name, pipe.publisher.address, out, ctl,
             rec)
    code = pipe.run()
    s = pipe.timer.summary()
    lat = s.get("latency", {})
    log.info("stopped after %d frames, %d messages; capture->publish median %.1f ms, p99 %.1f ms",
             pipe.frames, pipe.seq, lat.get("median_ms", float("nan")), lat.get("p99_ms", float("nan")))
    for sink in pipe.sinks:
        st = sink.stats()
        last = f" (last: {st['last_error']})" if st["errors"] else ""
        log.info("%s to %s: %d messages sent, %d failed%s", st["name"], st["destination"],
                 st["messages"] - st["errors"], st["errors"], last)
    return code


def run(args: argparse.Namespace) -> int:
    return serve(config_from_args(args))


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="run the head-tracking daemon and stream poses over ZeroMQ",
        description="Stream head poses from a camera or a file over ZeroMQ (docs/daemon.md). Filter "
                    "parameters: --filter.NAME VALUE (see docs/filter.md).")
    add_serve_arguments(p)
    p.set_defaults(func=run)
