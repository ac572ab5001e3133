"""A local webhook receiver for tests and trying things out: a real HTTP server on loopback.

    with Receiver(secret) as receiver:            # http://127.0.0.1:<free port>/hook
        ... point LEADROUTER_WEBHOOK_URLS at receiver.url ...
        receiver.wait_for(3)                      # three verified deliveries
        receiver.fail_next(2)                     # answer the next two with HTTP 503
        receiver.stop(); receiver.start()         # down (connection refused) and back up

It records every request (headers, body, whether the signature verified) and answers 204, or
503 while told to fail. ``python -m leadrouter_webhook.receiver SECRET [PORT]`` runs one and
prints what it receives.
"""

from __future__ import annotations

import http.server
import json
import sys
import threading
import time
from typing import Any

from leadrouter_webhook import verify

__all__ = ["Received", "Receiver"]


class Received:
    __slots__ = ("body", "headers", "status", "verified")

    def __init__(self, headers: dict[str, str], body: bytes, verified: bool, status: int) -> None:
        self.headers = headers
        self.body = body
        self.verified = verified
        self.status = status

    @property
    def id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self, secret: str, *, port: int = 0, path: str = "/hook") -> None:
        self.secret = secret
        self.path = path
        self.port = port
        self.requests: list[Received] = []
        self._failing = 0
        self._lock = threading.Condition()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    status = 204
                    if receiver._failing > 0:
                        receiver._failing -= 1
                        status = 503
                    ok = verify(receiver.secret, headers, body)
                    receiver.requests.append(Received(headers, body, ok, status))
                    receiver._lock.notify_all()
                self.send_response(status if ok else 400)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="webhook-receiver",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the socket: deliveries now fail with connection refused."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def fail_next(self, count: int) -> None:
        with self._lock:
            self._failing = count

    def delivered(self) -> list[Received]:
        """Requests answered 2xx with a valid signature."""
        with self._lock:
            return [r for r in self.requests if r.verified and r.status < 300]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Until ``count`` verified deliveries arrived (raises TimeoutError)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                done = [r for r in self.requests if r.verified and r.status < 300]
                if len(done) >= count:
                    return done
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(done)} of {count} deliveries after {timeout} s "
                                       f"({len(self.requests)} requests)")
                self._lock.wait(left)

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    secret, port = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8099
    receiver = Receiver(secret, port=port).start()
    print(f"listening on {receiver.url}", flush=True)
    seen = 0
    while True:
        time.sleep(0.2)
        for r in receiver.requests[seen:]:
            print(f"{'ok ' if r.verified else 'BAD'} {r.id} {r.body.decode()}", flush=True)
        seen = len(receiver.requests)


if __name__ == "__main__":
    main()
