"""The daemon loop (posebridge.daemon) with real parts."""
