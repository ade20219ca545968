"""Offline tools (posebridge.offline): datasets, evaluation, the renderer."""
