"""The survey service alone as a real process on a pre-loaded backlog; see bench/service_bench.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import service_bench

table = service_bench.table


def run(profile: Path | None = None) -> dict[str, Any]:
    return service_bench.measure("survey", profile)
