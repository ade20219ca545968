"""Crops, estimator, backends and the model store (posebridge.inference)."""
