"""The pose and position filters (posebridge.filtering)."""
