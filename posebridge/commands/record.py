"""`posebridge record FILE`: `serve` that also writes a session file (same as `serve --record FILE`)."""

from __future__ import annotations

import argparse

from posebridge.commands.serve import add_serve_arguments, config_from_args, serve


def run(args: argparse.Namespace) -> int:
    args.record = args.output
    return serve(config_from_args(args))


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "record", help="serve and record every frame's estimate, filtered pose and timing to a session file",
        description="Same as `posebridge serve --record FILE`; replay it with `posebridge replay FILE`.")
    p.add_argument("output", metavar="FILE", help="session file to write")
    add_serve_arguments(p)
    p.set_defaults(func=run)
