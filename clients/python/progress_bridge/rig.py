"""A robot rig for a progress-bridge server, from Python (docs/rig.md has the protocol).

    rig = RigClient("ws://127.0.0.1:8787/ws", token, name="arm-1", instruction="push the red cube to the green target",
                    cameras=[Camera("front", 96, 96, "jpeg")], proprio_names=["q0", "q1"],
                    action_low=[-1, -1], action_high=[1, 1], rate_hz=10, success_sensor=True)
    reply = rig.step({"front": jpeg_bytes}, proprio, success=False)   # blocks until the step is stored and answered
    if reply.late: hold the previous command (and say held=True next time); else apply reply.action
    if reply.ended: rig.reset("episode_end")

Each observation is on the server's disk before its action comes back; send one at a time. Frames are the bytes of
a JPEG or PNG file, or for `raw` cameras an RGB uint8 array [height, width, 3]. Needs numpy and msgpack only.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Union

import msgpack
import numpy as np

from .ws import ConnectionClosed, WebSocket

SUBPROTOCOL = "progress-bridge.v1"


class RigError(Exception):
    """A status error the server answered a rig message with (code, message, path), or a closed connection."""

    def __init__(self, code: str, message: str, path: Optional[str] = None):
        super().__init__(f"{code}: {message}" + (f" ({path})" if path else ""))
        self.code = code
        self.message = message
        self.path = path


@dataclass
class Camera:
    name: str
    width: int
    height: int
    encoding: str = "jpeg"  # jpeg | png | raw


@dataclass
class RigReply:
    """The server's answer to one observation."""

    seq: int
    episode: int
    step: int
    action: np.ndarray
    """float32 [action dim], already clipped into the declared bounds."""
    late: bool
    """Decided past the deadline: do not apply it; hold the previous command and send held=True next."""
    decide_ms: float
    display: Optional[Dict[str, Any]]
    """The newest settled transition: step, phi, reward, shaped (trails the loop by the model's latency)."""
    ended: Optional[Dict[str, Any]]
    """Set when this observation ended the episode: send reset() before the next observation."""


def _tensor(array: np.ndarray) -> Dict[str, Any]:
    array = np.ascontiguousarray(array, dtype=np.dtype(array.dtype).newbyteorder("<"))
    return {"dtype": array.dtype.name, "shape": list(array.shape), "data": array.tobytes()}


class RigClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        name: str,
        instruction: str,
        cameras: Sequence[Camera],
        proprio_names: Sequence[str],
        action_low: Sequence[float],
        action_high: Sequence[float],
        rate_hz: float,
        success_sensor: bool = True,
        timeout: float = 30.0,
        client: str = "RigClient (Python)",
    ):
        self._timeout = timeout
        self._seq = 0
        self.spec = {
            "name": name,
            "instruction": instruction,
            "cameras": [
                {"name": c.name, "width": c.width, "height": c.height, "encoding": c.encoding} for c in cameras
            ],
            "proprio": {"names": list(proprio_names)},
            "action": {
                "dim": len(action_low),
                "low": [float(v) for v in action_low],
                "high": [float(v) for v in action_high],
                "rateHz": float(rate_hz),
            },
            "successSensor": bool(success_sensor),
        }
        self.notices: List[Dict[str, Any]] = []
        self._ws = WebSocket(url, SUBPROTOCOL, timeout=timeout)
        try:
            self._send({"type": "hello", "role": "rig", "token": token, "client": client, "rig": self.spec})
            self.welcome = self._answer(("welcome",), "hello")
            self.ready = self._answer(("rig_ready",), "hello")
        except BaseException:
            self._ws.close()
            raise
        self.episode: int = self.ready["episode"]

    def step(
        self,
        frames: Dict[str, Union[bytes, np.ndarray]],
        proprio: Sequence[float],
        *,
        time: Optional[float] = None,
        success: Optional[bool] = None,
        intervention: Optional[Sequence[float]] = None,
        held: bool = False,
        privileged: Optional[float] = None,
    ) -> RigReply:
        """Sends the current state's observation; returns the action for the next control period.

        success: the rig's success sensor (when declared); intervention: the action a human executed for the step
        that led here; held: the previous action was not applied (it came late).
        """
        seq = self._seq
        self._seq += 1
        msg: Dict[str, Any] = {
            "type": "rig_obs",
            "seq": seq,
            "episode": self.episode,
            "time": float(_time.time() if time is None else time),
            "frames": {k: (v.tobytes() if isinstance(v, np.ndarray) else bytes(v)) for k, v in frames.items()},
            "proprio": _tensor(np.asarray(proprio, dtype=np.float32)),
        }
        if success is not None:
            msg["success"] = bool(success)
        if intervention is not None:
            msg["intervention"] = _tensor(np.asarray(intervention, dtype=np.float32))
        if held:
            msg["held"] = True
        if privileged is not None:
            msg["privileged"] = float(privileged)  # simulated rigs only: the task's true progress, for the oracle
        self._send(msg)
        r = self._answer(("rig_action",), "rig_obs")
        if r["seq"] != seq:
            raise RigError("INVALID_VALUE", f"rig_action for seq {r['seq']}, sent {seq}")
        a = r["action"]
        action = np.frombuffer(a["data"], dtype=np.dtype(a["dtype"]).newbyteorder("<")).astype(np.float32)
        return RigReply(
            seq=r["seq"],
            episode=r["episode"],
            step=r["step"],
            action=action,
            late=bool(r["late"]),
            decide_ms=float(r["decideMs"]),
            display=r.get("display"),
            ended=r.get("ended"),
        )

    def reset(self, reason: Optional[str] = None) -> Dict[str, Any]:
        """Ends the current episode (truncated if it still runs) and starts the next; returns rig_episode."""
        self._send({"type": "rig_reset", **({"reason": reason} if reason else {})})
        ep = self._answer(("rig_episode",), "rig_reset")
        self.episode = ep["episode"]
        return ep

    def mark(self, outcome: str) -> Dict[str, Any]:
        """A human's verdict ("success" or "failure") on the current episode; it ends the episode."""
        self._send({"type": "rig_mark", "outcome": outcome, "episode": self.episode})
        return self._answer(("rig_episode",), "rig_mark")

    def close(self) -> None:
        self._ws.close()

    def __enter__(self) -> "RigClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _send(self, msg: Dict[str, Any]) -> None:
        self._ws.send(msgpack.packb(msg, use_bin_type=True))

    def _answer(self, types: Sequence[str], ref: Optional[str]) -> Dict[str, Any]:
        while True:
            try:
                raw = self._ws.recv(timeout=self._timeout)
            except ConnectionClosed as err:
                raise RigError("CONNECTION_CLOSED", f"the bridge connection closed ({err.code} {err.reason})") from None
            msg = msgpack.unpackb(raw, raw=False)
            kind = msg.get("type")
            if kind in types:
                return msg
            if kind == "status":
                if msg.get("level") == "error" and msg.get("ref") in (None, ref):
                    raise RigError(msg["code"], msg["message"], msg.get("path"))
                # Warnings answer nothing; keep the latest for the caller to show.
                self.notices = (self.notices + [msg])[-100:]
