"""A Gymnasium-style vector env whose sub-envs run on a progress-bridge server.

    env = RemoteVectorEnv("ws://127.0.0.1:8787/ws", token, "push", num_envs=8, reward="default", gamma=0.99)
    obs, info = env.reset(seed=0)
    obs, rewards, terminated, truncated, info = env.step(actions)   # actions: [num_envs, act_dim]

Semantics are Gymnasium 1.x vector envs: `metadata["autoreset_mode"]` is `next-step` (default), `same-step` or
`disabled`, exactly as Gymnasium defines them. Needs numpy and msgpack only; gymnasium is used for the spaces
when it is installed, and is not required.

Info keys, arrays over sub-envs: `is_success`, `episode_step`, `phi` (progress potential of each current state;
NaN without a model), on steps `sparse_reward` (the task reward before shaping) and `dense_reward`; in same-step
mode `final_obs` [num_envs, obs_dim] and `final_info` (with `is_success`, `episode_step`, `phi`) for sub-envs whose
episode ended on this step, with masks `_final_obs` and `_final_info`. Gymnasium's SyncVectorEnv gives
`final_obs` as an object array of per-env arrays; here it is one float32 array, and indexing it by the mask
works the same.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

import msgpack
import numpy as np

from .ws import ConnectionClosed, WebSocket

SUBPROTOCOL = "progress-bridge.v1"


class RemoteEnvError(Exception):
    """The server refused a call. `code` is the protocol's stable error code (docs/protocol.md)."""

    def __init__(self, code: str, message: str, path: Optional[str] = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.path = path


class Box:
    """A minimal stand-in for gymnasium.spaces.Box, used when gymnasium is not installed."""

    def __init__(self, low: float, high: float, shape: Sequence[int], dtype: Any = np.float32, seed=None):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.low = np.full(self.shape, low, dtype=self.dtype)
        self.high = np.full(self.shape, high, dtype=self.dtype)
        self._rng = np.random.default_rng(seed)

    def seed(self, seed: Optional[int] = None) -> None:
        self._rng = np.random.default_rng(seed)

    def sample(self) -> np.ndarray:
        bounded = np.isfinite(self.low) & np.isfinite(self.high)
        lo = np.where(bounded, self.low, 0.0)
        hi = np.where(bounded, self.high, 0.0)
        return np.where(bounded, self._rng.uniform(lo, hi), self._rng.normal(size=self.shape)).astype(self.dtype)

    def contains(self, x: Any) -> bool:
        x = np.asarray(x)
        return x.shape == self.shape and bool(np.all(x >= self.low) and np.all(x <= self.high))

    def __repr__(self) -> str:
        return f"Box({self.low.flat[0] if self.low.size else ''}, {self.high.flat[0] if self.high.size else ''}, {self.shape}, {self.dtype})"


def _box(low: float, high: float, shape: Sequence[int]):
    try:
        from gymnasium.spaces import Box as GymBox  # type: ignore
    except ImportError:
        return Box(low, high, shape)
    return GymBox(low=low, high=high, shape=tuple(shape), dtype=np.float32)


def _tensor(array: np.ndarray) -> Dict[str, Any]:
    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return {"dtype": array.dtype.name, "shape": list(array.shape), "data": array.tobytes()}


def _array(t: Dict[str, Any]) -> np.ndarray:
    return np.frombuffer(t["data"], dtype=np.dtype(t["dtype"]).newbyteorder("<")).reshape(t["shape"]).copy()


class RemoteVectorEnv:
    """A vector env of `num_envs` sub-envs of `task`, run by the bridge server at `url`.

    reward: "sparse" (default), "dense", "default" or "oracle" (potential-based progress shaping with that model),
    "naive" or "progress" (semantic-trap ablations), or a model source the server allows. Shaped rewards need
    `gamma`, the learner's own discount. `query_stride` scores states every k control steps (holding Phi in
    between), which divides the per-step wait for the model by about k.
    """

    def __init__(
        self,
        url: str,
        token: str,
        task: str,
        num_envs: int,
        *,
        autoreset_mode: str = "next-step",
        reward: str = "sparse",
        gamma: Optional[float] = None,
        model: Optional[str] = None,
        shaping_scale: Optional[float] = None,
        query_stride: Optional[int] = None,
        bootstrap_truncated: Optional[bool] = None,
        action_mode: Optional[str] = None,
        episode_steps: Optional[int] = None,
        timeout: float = 120.0,
        client: str = "RemoteVectorEnv (Python)",
    ):
        self._timeout = timeout
        self._req = 0
        self._closed = False
        self._ws = WebSocket(url, SUBPROTOCOL, timeout=timeout)
        if self._ws.protocol != SUBPROTOCOL:
            self._ws.close()
            raise RemoteEnvError("UNSUPPORTED_SUBPROTOCOL", f"server answered subprotocol {self._ws.protocol!r}")
        try:
            self._send({"type": "hello", "role": "learner", "token": token, "client": client})
            welcome = self._wait("welcome", None)
            self.session = welcome["session"]
            request = {
                "type": "vec_open",
                "task": task,
                "numEnvs": int(num_envs),
                "autoreset": autoreset_mode,
                "reward": reward,
                "gamma": gamma,
                "model": model,
                "shapingScale": shaping_scale,
                "queryStride": query_stride,
                "bootstrapTruncated": bootstrap_truncated,
                "actionMode": action_mode,
                "episodeSteps": episode_steps,
            }
            opened = self._call({k: v for k, v in request.items() if v is not None}, "vec_opened")
        except BaseException:
            self._ws.close()
            raise
        self.description: Dict[str, Any] = opened
        self._env = opened["env"]
        self.num_envs: int = opened["numEnvs"]
        self.obs_dim: int = opened["obsDim"]
        self.act_dim: int = opened["actDim"]
        self.obs_names = list(opened["obsNames"])
        self.instruction: str = opened["instruction"]
        self.episode_steps: int = opened["episodeSteps"]
        self.metadata = {"autoreset_mode": opened["autoreset"]}
        self.single_observation_space = _box(-np.inf, np.inf, (self.obs_dim,))
        self.single_action_space = _box(opened["actionLow"], opened["actionHigh"], (self.act_dim,))
        self.observation_space = _box(-np.inf, np.inf, (self.num_envs, self.obs_dim))
        self.action_space = _box(opened["actionLow"], opened["actionHigh"], (self.num_envs, self.act_dim))

    # -- Gymnasium API -----------------------------------------------------------------------------------------

    def reset(self, *, seed: Union[None, int, Sequence[int]] = None, options: Optional[Dict[str, Any]] = None):
        """Resets every sub-env (or those in options["reset_mask"]); sub-env i gets seed + i, or seed[i]."""
        msg: Dict[str, Any] = {"type": "vec_reset", "env": self._env}
        if seed is not None:
            if np.ndim(seed) == 0:
                msg["seed"] = int(seed)  # type: ignore[arg-type]
            else:
                msg["seeds"] = [int(s) for s in seed]  # type: ignore[union-attr]
        if options and options.get("reset_mask") is not None:
            msg["resetMask"] = [bool(m) for m in np.asarray(options["reset_mask"]).reshape(-1)]
        reply = self._call(msg, "vec_reset_result")
        return _array(reply["obs"]), self._info(reply["info"])

    def step(self, actions):
        """Steps every sub-env with actions [num_envs, act_dim]; returns (obs, rewards, terminated, truncated, info)."""
        a = np.asarray(actions, dtype=np.float32)
        if a.shape != (self.num_envs, self.act_dim):
            if a.size == self.num_envs * self.act_dim:
                a = a.reshape(self.num_envs, self.act_dim)
            else:
                raise ValueError(f"actions must have shape {(self.num_envs, self.act_dim)}, got {a.shape}")
        reply = self._call({"type": "vec_step", "env": self._env, "actions": _tensor(a)}, "vec_step_result")
        self.last_timing = reply.get("timing")
        return (
            _array(reply["obs"]),
            _array(reply["rewards"]),
            _array(reply["terminated"]).astype(bool),
            _array(reply["truncated"]).astype(bool),
            self._info(reply["info"]),
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._ws.closed is None:
            try:
                self._call({"type": "vec_close", "env": self._env}, "vec_closed", timeout=5.0)
            except Exception:
                pass  # the server frees the envs when the connection drops anyway
        self._ws.close()

    def __enter__(self) -> "RemoteVectorEnv":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    @property
    def unwrapped(self) -> "RemoteVectorEnv":
        return self

    # -- wire --------------------------------------------------------------------------------------------------

    @staticmethod
    def _info(w: Dict[str, Any]) -> Dict[str, Any]:
        info: Dict[str, Any] = {}
        for key, value in w.items():
            if key == "final_info":
                info[key] = {k: _array(v) for k, v in value.items()}
                info[key]["is_success"] = info[key]["is_success"].astype(bool)
            else:
                info[key] = _array(value)
        info["is_success"] = info["is_success"].astype(bool)
        for mask in ("_final_obs", "_final_info"):
            if mask in info:
                info[mask] = info[mask].astype(bool)
        return info

    def _send(self, msg: Dict[str, Any]) -> None:
        self._ws.send(msgpack.packb(msg, use_bin_type=True))

    def _call(self, msg: Dict[str, Any], reply_type: str, timeout: Optional[float] = None) -> Dict[str, Any]:
        if self._closed and msg["type"] != "vec_close":
            raise RemoteEnvError("ENV_CLOSED", "the remote vector env is closed")
        self._req += 1
        msg["req"] = self._req
        self._send(msg)
        return self._wait(reply_type, self._req, timeout)

    def _wait(self, reply_type: str, req: Optional[int], timeout: Optional[float] = None) -> Dict[str, Any]:
        while True:
            try:
                raw = self._ws.recv(timeout=timeout or self._timeout)
            except ConnectionClosed as err:
                self._closed = True
                raise RemoteEnvError("ENV_CLOSED", f"the bridge connection closed ({err.code} {err.reason})") from None
            msg = msgpack.unpackb(raw, raw=False)
            kind = msg.get("type")
            if kind == reply_type and (req is None or msg.get("req") == req):
                return msg
            if kind == "status" and msg.get("level") == "error" and msg.get("req") in (None, req):
                raise RemoteEnvError(msg["code"], msg["message"], msg.get("path"))
            if kind == "vec_closed" and msg.get("req") is None:
                self._closed = True
                raise RemoteEnvError("ENV_FAILED", f"the server closed the env: {msg.get('reason')}")
