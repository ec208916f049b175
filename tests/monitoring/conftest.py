"""The monitoring tests run Prometheus' own tools (`promtool`), so they are not unit tests: `make
unit` leaves them out; `make test` and `make monitoring-test` (both install the tools first with
`make monitoring-tools`) run them."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool") or "/usr/bin/promtool"
    if not os.access(path, os.X_OK):
        pytest.fail("promtool not found: `make monitoring-tools` installs Debian's prometheus package")
    return path
