"""User-facing errors: one clear line naming the file or field, exit code 2, no traceback."""

from __future__ import annotations


class PoseBridgeError(Exception):
    """An error caused by user input (a file, a field, a device). The CLI prints it as one line."""

    exit_code = 2


class InputFileError(PoseBridgeError):
    """A missing, truncated or wrong-format input file (image, video, checkpoint, session, config)."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class ConfigError(PoseBridgeError):
    """An unknown or invalid configuration key or value."""
