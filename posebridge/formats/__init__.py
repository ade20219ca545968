"""Shared formats, read and written by several rooms: the wire protocol's message (protocol.py), the
recorded session file (session_file.py) and the rotation conventions with their quaternion and Euler
math (rotation.py). They import nothing from the runtime's stages, so any stage, the offline tools and
training may use them."""
