"""posebridge: camera -> face -> head-pose CNN -> Kalman filter -> ZeroMQ stream."""

__version__ = "0.1.0"
