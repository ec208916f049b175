"""Per-service HTTP server: /metrics (Prometheus), /healthz (alive) and /readyz (ready).

A probe is a callable answering True (200), False (503) or, when failing, the reason as text
(503, the reason in the body: `kubectl describe pod` shows it in the probe's failure event)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

Probe = Callable[[], "bool | str"]


def _verdict(answer: bool | str, ok_body: bytes, failed: str) -> tuple[int, bytes]:
    if answer is True:
        return 200, ok_body
    reason = f": {answer}" if isinstance(answer, str) and answer else ""
    return 503, f"{failed}{reason}\n".encode()


class HealthServer:
    def __init__(self, port: int, ready: Probe, alive: Probe = lambda: True) -> None:
        self._ready = ready
        self._alive = alive
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._send(*_verdict(outer._alive(), b"ok\n", "unhealthy"))
                elif path == "/readyz":
                    self._send(*_verdict(outer._ready(), b"ready\n", "not ready"))
                else:
                    self._send(404, b"not found\n")

            def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # quiet: scrapes are not news
                return

        self._server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    def set_ready(self, ready: Probe) -> None:
        self._ready = ready

    def set_alive(self, alive: Probe) -> None:
        self._alive = alive

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
