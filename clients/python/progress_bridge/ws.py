"""A minimal WebSocket client (RFC 6455) on the standard library: enough for the bridge's binary protocol.

The bridge speaks one MessagePack map per binary frame. This client opens ws:// URLs (wss:// through the ssl
module), offers the subprotocol, sends masked binary frames and receives whole messages. A daemon thread reads
the socket all the time, so the server's heartbeat pings are answered even while the learner is busy in a long
gradient update (the server terminates a peer that misses a ping).
"""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import socket
import ssl
import struct
import threading
from typing import Optional, Tuple, Union
from urllib.parse import urlsplit

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class ConnectionClosed(Exception):
    """The connection is closed; `code` and `reason` are the close frame's, when one came."""

    def __init__(self, code: int, reason: str):
        super().__init__(f"connection closed ({code} {reason})")
        self.code = code
        self.reason = reason


class HandshakeError(Exception):
    """The server refused the WebSocket upgrade."""


class WebSocket:
    def __init__(self, url: str, subprotocol: str, timeout: float = 30.0, max_message: int = 256 << 20):
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss"):
            raise ValueError(f"expected a ws:// or wss:// URL, got {url!r}")
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if parts.scheme == "wss":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        self._sock = sock
        self._max = max_message
        self._send_lock = threading.Lock()
        self._inbox: "queue.Queue[Union[bytes, ConnectionClosed]]" = queue.Queue()
        self.closed: Optional[ConnectionClosed] = None
        key = base64.b64encode(os.urandom(16)).decode()
        netloc = host if parts.port is None else f"{host}:{port}"
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
        )
        sock.sendall(request.encode())
        head, rest = self._read_head()
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if " 101 " not in status + " ":
            raise HandshakeError(f"upgrade refused: {status}")
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.decode(errors="replace").partition(":")
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            raise HandshakeError("bad Sec-WebSocket-Accept from the server")
        self.protocol = headers.get("sec-websocket-protocol", "")
        self._buf = bytearray(rest)
        # Reads block in the reader thread only; timeouts are applied where messages are awaited.
        sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, name="progress-bridge-ws", daemon=True)
        self._reader.start()

    def _read_head(self) -> Tuple[bytes, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self._sock.recv(4096)
            if not chunk:
                raise HandshakeError("connection closed during the handshake")
            data += chunk
            if len(data) > 65536:
                raise HandshakeError("handshake response too long")
        head, _, rest = data.partition(b"\r\n\r\n")
        return head, rest

    # -- sending -----------------------------------------------------------------------------------------------

    def send(self, payload: bytes, opcode: int = OP_BINARY) -> None:
        if self.closed is not None:
            raise self.closed
        header = bytearray([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header.append(0x80 | n)
        elif n < 65536:
            header.append(0x80 | 126)
            header += struct.pack(">H", n)
        else:
            header.append(0x80 | 127)
            header += struct.pack(">Q", n)
        mask = os.urandom(4)
        header += mask
        # Client frames must be masked (RFC 6455 5.3); numpy makes this fast for large action tensors.
        import numpy as np

        body = np.frombuffer(payload, dtype=np.uint8) if n else np.zeros(0, np.uint8)
        key = np.frombuffer(mask * ((n + 3) // 4), dtype=np.uint8)[:n]
        masked = np.bitwise_xor(body, key).tobytes()
        with self._send_lock:
            try:
                self._sock.sendall(bytes(header) + masked)
            except OSError as err:
                self._closed(1006, f"send failed: {err}")
                raise self.closed  # type: ignore[misc]

    # -- receiving ---------------------------------------------------------------------------------------------

    def recv(self, timeout: Optional[float] = None) -> bytes:
        """The next binary message; raises ConnectionClosed, or TimeoutError after `timeout` seconds."""
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no message within {timeout} s") from None
        if isinstance(item, ConnectionClosed):
            self._inbox.put(item)
            raise item
        return item

    def _recv_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self._sock.recv(max(65536, n - len(self._buf)))
            if not chunk:
                raise ConnectionClosed(1006, "connection lost")
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _read_frame(self) -> Tuple[bool, int, bytes]:
        b0, b1 = self._recv_exact(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack(">H", self._recv_exact(2))
        elif n == 127:
            (n,) = struct.unpack(">Q", self._recv_exact(8))
        if n > self._max:
            raise ConnectionClosed(1009, f"message of {n} bytes is over the client's limit")
        mask = self._recv_exact(4) if b1 & 0x80 else None
        data = self._recv_exact(n)
        if mask:
            data = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
        return bool(b0 & 0x80), b0 & 0x0F, data

    def _read_loop(self) -> None:
        parts: list = []
        try:
            while True:
                fin, op, data = self._read_frame()
                if op == OP_PING:
                    self.send(data, OP_PONG)
                elif op == OP_PONG:
                    pass
                elif op == OP_CLOSE:
                    code = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else 1005
                    reason = data[2:].decode(errors="replace")
                    try:
                        self.send(data[:2], OP_CLOSE)
                    except Exception:
                        pass
                    self._closed(code, reason)
                    return
                else:
                    parts.append(data)
                    if fin:
                        self._inbox.put(b"".join(parts))
                        parts = []
        except ConnectionClosed as err:
            self._closed(err.code, err.reason)
        except OSError as err:
            self._closed(1006, str(err))

    def _closed(self, code: int, reason: str) -> None:
        if self.closed is None:
            self.closed = ConnectionClosed(code, reason)
            self._inbox.put(self.closed)
        try:
            self._sock.close()
        except OSError:
            pass

    def close(self, code: int = 1000) -> None:
        if self.closed is None:
            try:
                self.send(struct.pack(">H", code), OP_CLOSE)
            except Exception:
                pass
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._closed(code, "closed by the client")
