"""What every service's __main__ shares: settings from env (fail fast), JSON logs, the HTTP
health/metrics server, SIGTERM handling and the run of the stream loop."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable

from services.common import config, metrics
from services.common.config import ConfigError, ServiceSettings
from services.common.http import HealthServer
from services.common.kafka import StreamLoop
from services.common.logging import JsonLogger
from services.common.shutdown import install_signal_handlers


def freeze_startup_objects() -> None:
    """Called by each service once it is built, right before its loop starts. Everything built so far
    (modules, config, clients: ~36,000 objects in routing) lives as long as the process; frozen, it
    is out of the cyclic collector's sight, and every full collection afterwards scans only what the
    traffic made (12.8 ms less per full collection in routing)."""
    gc.collect()
    gc.freeze()


class Runtime:
    def __init__(self, service: str, default_http_port: int) -> None:
        try:
            self.settings = ServiceSettings.from_env(service, default_http_port)
        except ConfigError as exc:
            print(f"{service}: configuration error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        self.log = JsonLogger(service, self.settings.log_level)
        self.stop = threading.Event()
        install_signal_handlers(self.stop)
        self.http: HealthServer | None = None

    def fail_config(self, exc: Exception) -> None:
        print(f"{self.settings.service}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2)

    def start_http(self, ready: Callable[[], bool]) -> HealthServer:
        service = self.settings.service

        def _ready() -> bool:
            ok = ready() and not self.stop.is_set()
            metrics.READY.labels(service).set(1 if ok else 0)
            return ok

        for old, new in config.DEPRECATED_NAMES:
            self.log.warning("config_deprecated", variable=old, use=new,
                             detail=f"{old} is read for one more release; set {new} instead")
        self.http = HealthServer(self.settings.http_port, _ready).start()
        self.log.info("http_listening", port=self.http.port, paths=["/metrics", "/healthz", "/readyz"])
        return self.http

    def run_loop(self, loop: StreamLoop, ready: Callable[[], bool] | None = None) -> int:
        """Serve HTTP and run `loop` until SIGTERM; returns the process exit code."""
        extra = ready or (lambda: True)
        if self.http is None:
            self.start_http(lambda: loop.assigned.is_set() and extra())
        else:  # started earlier (e.g. while loading a table): now readiness includes the loop
            self.http.set_ready(lambda: loop.assigned.is_set() and extra() and not self.stop.is_set())
        freeze_startup_objects()
        try:
            loop.run(self.stop)
        except Exception as exc:
            self.log.error("service_failed", error=type(exc).__name__, detail=str(exc)[:500])
            return 1
        finally:
            if self.http:
                self.http.stop()
        self.log.info("service_stopped")
        return 0

    def finish(self, failure: BaseException | None) -> int:
        """Stops the HTTP server, logs how the service ended and returns the process exit code."""
        if self.http:
            self.http.stop()
        if failure is not None:
            self.log.error("service_failed", error=type(failure).__name__, detail=str(failure)[:500])
            return 1
        self.log.info("service_stopped")
        return 0
