"""`posebridge keys DIR`: make CURVE key pairs for using the daemon beyond 127.0.0.1 (see
posebridge.output.security and docs/daemon.md, "Security")."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("keys", help="make CURVE keys so only authorised clients can connect",
                              description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path, help="key folder to create (server + client key pairs)")
    p.add_argument("--clients", type=int, default=1, help="client key pairs to make (default 1)")
    p.add_argument("--overwrite", action="store_true", help="replace keys already in the folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from posebridge import validation
    from posebridge.output.security import generate_keys

    validation.integer("--clients", args.clients, 1, 100)
    written = generate_keys(args.folder, clients=args.clients, overwrite=args.overwrite)
    print(f"wrote {len(written)} key files in {args.folder}")
    print(f"  daemon:  [security] keys = \"{args.folder}\" (server.key_secret never leaves its machine)")
    print(f"  client:  copy {args.folder}/server.key and client.key + client.key_secret to the client; "
          f"posebridge listen --keys DIR")
    return 0
