"""Fixtures for the deployment tests: the pinned helm binary (installed with `go install` into
.cache/bin when missing, as `make tools` does) and the chart rendered with a values file."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.chart import (
    CHART,
    DEFAULT_KUBE,
    FIXTURES,
    HELM_LDFLAGS,
    HELM_MODULE,
    HELM_VERSION,
    KUBE_VERSIONS,
    VALUES_DIR,
    helm_ok,
    helm_path,
    render_docs,
)


@pytest.fixture(scope="session")
def helm() -> str:
    path = helm_path()
    if not helm_ok(path):
        go = shutil.which("go")
        if go is None:
            pytest.fail(f"helm {HELM_VERSION} is not in {path.parent} and Go is not on PATH to build it "
                        f"(`make tools` runs: GOBIN={path.parent} go install -ldflags ... {HELM_MODULE})")
        path.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([go, "install", "-ldflags", HELM_LDFLAGS, HELM_MODULE],
                              env={**os.environ, "GOBIN": str(path.parent)}, capture_output=True, text=True,
                              timeout=1200)
        if proc.returncode != 0:
            pytest.fail(f"go install {HELM_MODULE} failed:\n{proc.stderr[-3000:]}")
        assert helm_ok(path), f"{path} does not report {HELM_VERSION} or does not default to Kubernetes {DEFAULT_KUBE}"
    return str(path)


@pytest.fixture(scope="session")
def render(helm: str) -> Callable[..., list[dict[str, Any]]]:
    """render("default", "monitoring", chart=..., kube=..., sets=(...)) -> the rendered documents (cached)."""
    cache: dict[tuple[Any, ...], list[dict[str, Any]]] = {}

    def _render(*names: str, chart: Path = CHART, kube: str = KUBE_VERSIONS[-1],
                sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        key = (names, str(chart), kube, sets)
        if key not in cache:
            cache[key] = render_docs(helm, [VALUES_DIR / f"{n}.yaml" for n in names], chart=chart, kube=kube,
                                     sets=sets)
        return cache[key]

    return _render


@pytest.fixture(scope="session")
def chart_with_monitoring_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the chart with a rules file and a dashboard dropped into files/, as the
    dashboards/alerts change will do: what the monitoring templates render from."""
    dest = tmp_path_factory.mktemp("chart") / "switchboard"
    shutil.copytree(CHART, dest, symlinks=False)
    # Only the fixtures: the chart's own rules and dashboards are tested as they are elsewhere.
    for old in [*(dest / "files" / "prometheus").glob("*.yaml"), *(dest / "files" / "dashboards").glob("*.json")]:
        old.unlink()
    shutil.copy(FIXTURES / "rules.yaml", dest / "files" / "prometheus" / "fixture-rules.yaml")
    shutil.copy(FIXTURES / "fixture_dashboard.json", dest / "files" / "dashboards" / "fixture_dashboard.json")
    return dest
