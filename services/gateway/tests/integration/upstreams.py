"""Upstreams for the gateway's tests that misbehave on purpose, as tiny real HTTP servers."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter

import h11


class ClosesReusedConnections:
    """An upstream that answers the first request on each connection and closes the
    connection, unanswered, when a second one arrives on it: what a service does when its
    keep-alive timeout fires just as the gateway reuses the connection. ``answered``
    counts the requests it answered, by method."""

    def __init__(self) -> None:
        self.answered: Counter[str] = Counter()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        http = h11.Connection(h11.SERVER)
        answered_here = 0
        request: h11.Request | None = None
        body = b""
        with connection:
            while data := connection.recv(65536):
                http.receive_data(data)
                while (event := http.next_event()) is not h11.NEED_DATA:
                    if isinstance(event, h11.Request):
                        if answered_here:
                            return  # the second request on this connection: hang up
                        request, body = event, b""
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage) and request is not None:
                        self._answer(connection, http, request, body)
                        answered_here += 1
                        http.start_next_cycle()
                    elif isinstance(event, h11.ConnectionClosed):
                        return

    def _answer(
        self, connection: socket.socket, http: h11.Connection, request: h11.Request, body: bytes
    ) -> None:
        method = request.method.decode()
        self.answered[method] += 1
        payload = json.dumps({"method": method, "body": body.decode()}).encode()
        headers = [("content-type", "application/json"), ("content-length", str(len(payload)))]
        for event in (h11.Response(status_code=200, headers=headers), h11.Data(data=payload)):
            connection.sendall(http.send(event) or b"")
        connection.sendall(http.send(h11.EndOfMessage()) or b"")


class DiesMidRequest:
    """An upstream that reads the first request sent to it in full and then dies without
    answering: it hangs up on that connection and stops listening, so every later
    connection is refused. ``received`` lists the ``(method, body)`` it got."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve_one, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _serve_one(self) -> None:
        try:
            connection, _ = self._listener.accept()
        except OSError:
            return
        http = h11.Connection(h11.SERVER)
        request: h11.Request | None = None
        body = b""
        with connection:
            while data := connection.recv(65536):
                http.receive_data(data)
                while (event := http.next_event()) is not h11.NEED_DATA:
                    if isinstance(event, h11.Request):
                        request = event
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage) and request is not None:
                        self.received.append((request.method.decode(), body.decode()))
                        self._listener.close()
                        return
                    elif isinstance(event, h11.ConnectionClosed):
                        return
