"""Face detectors and the tracker (posebridge.faces)."""
