"""`posebridge cameras`: the capture devices with their names, paths and frame sizes.

posebridge.sources.devices finds them; `--source` takes any of the names (or a unique part of one) as
well as an index or a path."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser("cameras", help="list capture devices: names, paths, formats and sizes",
                              description=" ".join(__doc__.split()))
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def format_cameras(cameras) -> str:
    if not cameras:
        return "no capture devices found (a video file works as --source too)"
    lines = []
    for c in cameras:
        head = f"{c.path:<12} {c.name or '(no name)'}"
        if not c.capture:
            lines.append(f"{head}  [{c.note}]")
            continue
        lines.append(head + (f"  [{c.note}]" if c.note else ""))
        for fmt, sizes in c.formats.items():
            shown = " ".join(f"{w}x{h}" for w, h in sizes[:12]) + (" ..." if len(sizes) > 12 else "")
            lines.append(f"{'':<12}   {fmt or 'sizes':<5} {shown or '-'}")
    usable = [c for c in cameras if c.capture]
    if usable:
        first = usable[0]
        lines.append("")
        lines.append(f"use one: posebridge serve --source {first.path}   (or --source \"{first.name}\")")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from posebridge.sources.devices import list_cameras

    cameras = list_cameras()
    if args.json:
        print(json.dumps([{"path": c.path, "name": c.name, "index": c.index, "capture": c.capture,
                           "formats": {k: [list(s) for s in v] for k, v in c.formats.items()}, "note": c.note}
                          for c in cameras], indent=1))
    else:
        print(format_cameras(cameras))
    return 0
