"""Output: the ZeroMQ transport, the control socket, the VMC and opentrack senders (the formats they
carry live in posebridge.formats)."""
