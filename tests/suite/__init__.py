"""The suite's own rules (tests/conftest.py)."""
