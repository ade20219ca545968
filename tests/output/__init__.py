"""Outputs (posebridge.output): ZeroMQ transport and the control socket."""
