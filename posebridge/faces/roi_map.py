"""Detector box -> 3DDFA landmark ROI: offsets fitted per detector on AFLW2000-dev (see
benchmarks/fit_roi_map.py). Placeholder until the fit lands."""

from __future__ import annotations

BOX_MAPS: dict[str, dict[str, float]] = {}


def box_map_for(detector: str) -> dict[str, float]:
    return BOX_MAPS.get(detector, {})
