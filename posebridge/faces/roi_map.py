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

# Fitted on AFLW2000-dev (1,040 images, 450x450), benchmarks/fit_roi_map.py, detector default options.
BOX_MAPS: dict[str, dict[str, float]] = {
    "haar": {"dx": 0.0, "dy": 0.15, "scale": 1.166},
    "yunet": {"dx": 0.01, "dy": 0.127, "scale": 1.079},
}


def box_map_for(detector: str) -> dict[str, float]:
    """The fitted map for a detector name ({} when there is none)."""
    return dict(BOX_MAPS.get(detector, {}))
