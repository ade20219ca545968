"""Detector box -> 3DDFA landmark ROI, per detector.

Models trained on 3DDFA-protocol crops (posebridge-small) expect a square centred on the bounding box
of the 68 landmarks with side sqrt(2) x its longer side. A face detector's box is smaller and sits
lower or higher on the face depending on the detector, so `posebridge.crops.face_roi` maps it:

    centre = box centre + (dx * box width, dy * box height)      side = scale * max(box width, height)

The numbers are one global fit per detector (medians over every matched face of AFLW2000-dev, not
per-image tuning) made by `python benchmarks/fit_roi_map.py --detector haar --detector yunet`; see
docs/models.md for the fit, its spread and what it does to accuracy. A detector without a fit falls back
to the checkpoint's own `crop.box_map`, then to scale sqrt(2) with no offset.
"""

from __future__ import annotations

# Fitted on AFLW2000-dev (1,040 images, 450x450) by benchmarks/fit_roi_map.py with each detector's default
# options; faces matched: dlib_hog 781 own boxes + 83 Haar-profile fallback boxes (176 missed), haar 752
# (288 missed), yunet 1,027 (13 missed). Mean IoU with the landmark ROI (plain sqrt(2) square of the box
# -> mapped): dlib_hog 0.75 -> 0.78, haar 0.63 -> 0.78, yunet 0.61 -> 0.85. dlib_hog's profile fallback
# boxes carry detector "haar" and use the haar map.
BOX_MAPS: dict[str, dict[str, float]] = {
    "dlib_hog": {"dx": 0.0211, "dy": 0.0578, "scale": 1.3723},
    "haar": {"dx": 0.0035, "dy": 0.1389, "scale": 1.1933},
    "yunet": {"dx": 0.0013, "dy": 0.1175, "scale": 1.099},
}


def box_map_for(detector: str) -> dict[str, float]:
    """The fitted map for a detector name ({} when there is none)."""
    return dict(BOX_MAPS.get(detector, {}))
