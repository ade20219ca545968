"""Per-stage latency bookkeeping (decode, detect, track, crop, infer, filter, publish...)."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from contextlib import contextmanager

import numpy as np


class StageTimer:
    """Keeps the last `window` durations (ms) of each named stage and reports percentiles."""

    def __init__(self, window: int = 1000) -> None:
        self.window = window
        self.samples: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=self.window))

    @contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, (time.perf_counter() - t0) * 1000.0)

    def add(self, name: str, ms: float) -> None:
        self.samples[name].append(ms)

    def summary(self) -> dict[str, dict[str, float]]:
        """{stage: {"median_ms", "p99_ms", "count"}}"""
        out = {}
        for name, values in self.samples.items():
            arr = np.fromiter(values, dtype=np.float64)
            if arr.size:
                out[name] = {
                    "median_ms": float(np.median(arr)),
                    "p99_ms": float(np.percentile(arr, 99)),
                    "count": int(arr.size),
                }
        return out
