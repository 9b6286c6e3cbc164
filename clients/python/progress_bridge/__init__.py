"""Python clients of the progress-bridge server: drive its simulated envs as a Gymnasium-style vector env
(docs/remote-learner.md), or connect a robot rig (docs/rig.md).

Needs numpy and msgpack only (Debian: python3-numpy python3-msgpack).
"""

from .rig import Camera, RigClient, RigError, RigReply
from .vector_env import Box, RemoteEnvError, RemoteVectorEnv
from .ws import ConnectionClosed, HandshakeError

__all__ = [
    "Box",
    "Camera",
    "ConnectionClosed",
    "HandshakeError",
    "RemoteEnvError",
    "RemoteVectorEnv",
    "RigClient",
    "RigError",
    "RigReply",
]
__version__ = "0.1.0"
