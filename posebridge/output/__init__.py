"""Output: the wire protocol, rotation conventions, ZeroMQ transport, control socket, session files."""
