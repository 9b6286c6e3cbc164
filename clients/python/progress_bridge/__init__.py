"""Python client of the progress-bridge server: drive its simulated envs as a Gymnasium-style vector env.

Needs numpy and msgpack only (Debian: python3-numpy python3-msgpack). See docs/remote-learner.md.
"""

from .vector_env import Box, RemoteEnvError, RemoteVectorEnv
from .ws import ConnectionClosed, HandshakeError

__all__ = ["Box", "ConnectionClosed", "HandshakeError", "RemoteEnvError", "RemoteVectorEnv"]
__version__ = "0.1.0"
