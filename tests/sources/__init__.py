"""Frame sources and cameras (posebridge.sources)."""
