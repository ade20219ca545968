"""Hostile clients and files: attacks, fuzzing, CURVE."""
