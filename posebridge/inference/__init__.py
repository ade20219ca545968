"""Inference: face crop -> head pose (crops, model metadata, ONNX Runtime backend, estimator)."""
