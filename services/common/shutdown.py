"""Graceful shutdown: SIGTERM/SIGINT set an event; loops finish their batch, commit and close."""

from __future__ import annotations

import signal
import threading
from types import FrameType


def install_signal_handlers(stop: threading.Event) -> None:
    def _handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
