"""The daemon: the per-frame loop over source -> faces -> inference -> filter -> output."""
