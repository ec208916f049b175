"""Shared by the deployment tests: paths, the pinned helm, rendering the chart."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "switchboard"
VALUES_DIR = Path(__file__).parent / "values"
FIXTURES = Path(__file__).parent / "fixtures"
HELM_VERSION = "v3.22.0"
HELM_MODULE = f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"
# The chart's minimum (Chart.yaml kubeVersion: native gRPC probes) and the newest schemas shipped.
KUBE_VERSIONS = ("1.27.0", "1.37.0")
# What helm assumes without a cluster (the Makefile's KUBE_VERSION and HELM_LDFLAGS, the same build):
# `go install` alone leaves 1.20, which the chart refuses.
DEFAULT_KUBE = KUBE_VERSIONS[-1]
_MINOR = DEFAULT_KUBE.split(".")[1]
HELM_LDFLAGS = " ".join([
    f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
    "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
    f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={_MINOR}",
    "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1",
    f"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor={_MINOR}",
])


def helm_path() -> Path:
    cache = Path(os.environ.get("SWITCHBOARD_CACHE_DIR", ROOT / ".cache"))
    return cache / "bin" / "helm"


def helm_ok(path: Path) -> bool:
    """The pinned version, built to assume DEFAULT_KUBE without a cluster."""
    if not path.is_file():
        return False
    out = subprocess.run([str(path), "version", "--template", "{{.Version}}"], capture_output=True, text=True)
    if out.returncode != 0 or out.stdout.strip() != HELM_VERSION:
        return False
    return default_kube_version(path) == f"v{DEFAULT_KUBE}"


def default_kube_version(path: Path) -> str:
    """The Kubernetes version `path` renders for without a cluster or --kube-version."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp) / "probe"
        (chart / "templates").mkdir(parents=True)
        (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
        (chart / "templates" / "v.yaml").write_text("kube: {{ .Capabilities.KubeVersion.Version }}\n")
        out = subprocess.run([str(path), "template", "p", str(chart)], capture_output=True, text=True)
    return yaml.safe_load(out.stdout).get("kube", "") if out.returncode == 0 and out.stdout.strip() else ""


class HelmError(Exception):
    pass


def render_docs(helm: str, values: list[Path], *, chart: Path = CHART, kube: str = KUBE_VERSIONS[-1],
                sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    args = ["template", "sb", "--namespace", "contact", "--kube-version", kube]
    for v in values:
        args += ["-f", str(v)]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.run([helm, *args, str(chart)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise HelmError(proc.stderr)
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def go_tool(name: str, module: str, version: str) -> str:
    """A pinned Go tool (`<module>@<version>`, module path up to /cmd/) in .cache/bin, built with `go
    install` when missing or built from another version (as `go version -m` tells): kubeconform and
    buf for tests/deploy. Fails the test with the reason when it cannot be built."""
    import re
    import shutil

    import pytest

    path = Path(os.environ.get("SWITCHBOARD_CACHE_DIR", ROOT / ".cache")) / "bin" / name
    mod = module.split("/cmd/")[0]

    def built() -> str:
        out = subprocess.run(["go", "version", "-m", str(path)], capture_output=True, text=True)
        m = re.search(rf"^\s*mod\s+{re.escape(mod)}\s+(\S+)", out.stdout, re.M)
        return m.group(1) if m else ""

    if shutil.which("go") is None:
        pytest.fail(f"Go is not on PATH to build {name} ({module}@{version})")
    if not path.is_file() or built() != version:
        path.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["go", "install", f"{module}@{version}"], env={**os.environ, "GOBIN": str(path.parent)},
                              capture_output=True, text=True, timeout=1200)
        if proc.returncode != 0:
            pytest.fail(f"go install {module}@{version} failed:\n{proc.stderr[-3000:]}")
        assert built() == version, f"{path} is not {module}@{version}"
    return str(path)

