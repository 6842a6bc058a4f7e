"""A TCP proxy in front of a real server that loses an answer: the request goes through, no reply comes.

    with CuttingProxy(sentinel_address, b"FAILOVER") as proxy:   # listens on proxy.address
        ...  # a client's bytes are forwarded both ways; once they hold the trigger they still
             # reach the server, but the client's connection is closed before any answer

The server acts on the request as usual (the connection to it stays open until the proxy stops):
what a client sees is a connection lost after sending, as when a network path dies mid-call.

    with CuttingProxy(sentinel_address, b"GET-MASTER-ADDR", vanish=True) as proxy:
        ...  # the request holding the trigger is answered; then the proxy is gone: its port
             # refuses connections and every connection through it is closed, as when a server
             # dies between two calls
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Self

Address = tuple[str, int]


class CuttingProxy:
    """Forwards connections to `upstream`; cuts each one whose client bytes contain `trigger` (or,
    `vanish`, lets the answer to it through and then stops)."""

    def __init__(self, upstream: Address, trigger: bytes, *, vanish: bool = False) -> None:
        self.upstream = upstream
        self.trigger = trigger.lower()
        self.vanish = vanish
        self.cut = 0  # connections cut so far
        self.gone = False  # vanished: nothing more goes through
        self._listener = socket.create_server(("127.0.0.1", 0))
        host, port = self._listener.getsockname()[:2]
        self._address = (str(host), int(port))
        self._sockets: list[socket.socket] = [self._listener]
        self._lock = threading.Lock()

    @property
    def address(self) -> Address:
        """Where clients connect (kept after stop)."""
        return self._address

    def start(self) -> Self:
        threading.Thread(target=self._accept, name="cutting-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # stopped
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._sockets += [client, server]
            cutting = threading.Event()
            threading.Thread(target=self._pump, args=(client, server, cutting, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, cutting, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, cutting: threading.Event, up: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data or self.gone:
                return
            if not up and cutting.is_set() and self.vanish:
                self.gone = True
                with contextlib.suppress(OSError):  # refused from now on, before the client reads on
                    self._listener.shutdown(socket.SHUT_RDWR)  # (a close alone leaves accept() listening)
                with contextlib.suppress(OSError):
                    sink.sendall(data)
                self.stop()
                return
            if not up and cutting.is_set():
                continue  # the server's answer to the cut request: swallowed
            triggered = up and self.trigger in data.lower()
            if triggered:
                cutting.set()  # before the server can answer
            with contextlib.suppress(OSError):
                sink.sendall(data)
            if triggered and not self.vanish:
                with self._lock:
                    self.cut += 1
                with contextlib.suppress(OSError):
                    source.shutdown(socket.SHUT_RDWR)  # the client's connection, gone unanswered
                    source.close()
                return
