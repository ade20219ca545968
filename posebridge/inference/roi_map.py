"""Detector box -> 3DDFA landmark ROI, per detector.

Models trained on 3DDFA-protocol crops (posebridge-small) expect a square centred on the bounding box
of the 68 landmarks with side sqrt(2) x its longer side. A face detector's box is smaller and sits
lower or higher on the face depending on the detector, and slides sideways as the head turns, so
`posebridge.inference.crops.face_roi` maps it:

    centre = box centre + ((dx + dx_yaw * sin(yaw)) * box width, dy * box height)
    side = scale * max(box width, box height)

where yaw is the model's own estimate (the tracked face's previous one, or a first pass: see
`Estimator.predict_faces`); the shipped maps leave the yaw term out (see below). The numbers are one
global fit per detector on AFLW2000-dev (Theil-Sen line for dx in sin(labelled yaw), medians for dy
and scale; not per-image tuning) made by
`python benchmarks/fit_roi_map.py --detector dlib_hog --detector haar --detector yunet`; see
docs/models.md for the fit, its spread and what it does to accuracy. A detector without a fit falls back
to the checkpoint's own `crop.box_map`, then to scale sqrt(2) with no offset.
"""

from __future__ import annotations

# Fitted on AFLW2000-dev by benchmarks/fit_roi_map.py with each detector's default options (haar_profile:
# the profile-cascade boxes of dlib_hog's fallback and of haar); the faces each detector matched and
# missed, and the mean IoU with the landmark ROI before and after its map, are in docs/models.md.
BOX_MAPS: dict[str, dict[str, float]] = {
    # Fitted on TRAINING crops (aflw-yaw-crops; never AFLW2000) by benchmarks/fit_blazeface_roi.py and
    # checked once, not fitted, on AFLW2000-dev: docs/blazeface.md.
    "blazeface": {"dx": -0.0086, "dy": 0.0421, "scale": 1.4184},
    "dlib_hog": {"dx": 0.0115, "dy": 0.0578, "scale": 1.3723},
    "haar": {"dx": -0.0001, "dy": 0.1394, "scale": 1.2038},
    "yunet": {"dx": -0.0012, "dy": 0.1175, "scale": 1.099},
    "haar_profile": {"dx": -0.0238, "dy": 0.1429, "scale": 1.0064},
}
# The fitted yaw terms (dx_yaw, docs/models.md) are not applied: placing the crop with the model's own yaw
# estimate did not help the shipped model (docs/models.md has the measurements), because the first-pass
# yaw is itself biased by the box's slide. A map given a `dx_yaw` (here or in a checkpoint's
# crop.box_map) turns it on.


def box_map_for(detector: str) -> dict[str, float]:
    """The fitted map for a detector name ({} when there is none)."""
    return dict(BOX_MAPS.get(detector, {}))
