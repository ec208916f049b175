"""When to re-read a config file (or a directory of YAML files): on SIGHUP, or when a poll every
`interval` seconds sees a file's modification time or size change. Shared by every service that
reloads its configuration without a restart."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path


def signature(location: str) -> tuple[tuple[str, int, int], ...]:
    """Changes when the file (or a *.yaml/*.yml file of the directory) changes."""
    p = Path(location)
    files = sorted(p.glob("*.y*ml")) if p.is_dir() else [p]
    out = []
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue
        out.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(out)


class ReloadWatch:
    """`due()` is True once per change of `location` (polled) and once per SIGHUP."""

    def __init__(self, location: str, interval: float, install_sighup: bool = True) -> None:
        self.location = location
        self.interval = interval
        self.requested = threading.Event()
        self._signature = signature(location) if location else ()
        self._next = time.monotonic() + interval
        if install_sighup and location and hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: self.requested.set())

    def due(self) -> bool:
        if not self.location:
            return False
        polled = bool(self.interval) and time.monotonic() >= self._next
        if not (self.requested.is_set() or polled):
            return False
        self._next = time.monotonic() + self.interval
        fresh = signature(self.location)
        if not self.requested.is_set() and fresh == self._signature:
            return False
        self.requested.clear()
        self._signature = fresh
        return True
