"""Offline tools: datasets, benchmark evaluation, the demo clip, drawing poses."""
