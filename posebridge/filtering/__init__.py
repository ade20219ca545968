"""Smoothing: a Kalman filter per face stream and the stream bookkeeping shared by serve and replay."""
