"""One source per artifact (docs/decisions/0004-one-source-per-artifact.md): what the chart ships
from files/ (example config, dashboards, rule files) is a relative symlink into deploy/, never a
copy; helm reads through the links and `helm package` stores their content."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.deploy.chart import CHART, ROOT, HelmError, render_docs

FILES = CHART / "files"
DEPLOY = ROOT / "deploy"


def _chart_entries() -> list[Path]:
    """Every file (or link) under the chart's files/, but the empty .gitkeep placeholders."""
    return sorted(p for p in FILES.rglob("*") if (p.is_symlink() or p.is_file()) and p.name != ".gitkeep")


def _expected() -> dict[str, str]:
    """Chart path under files/ -> its source under deploy/."""
    out = {"config/enrichment/enrichment.yaml": "config/enrichment.yaml",
           "config/ingestion/tenants.yaml": "config/tenants.yaml",
           "config/routing/queues.yaml": "config/queues.yaml",
           "config/survey/survey.yaml": "config/survey.yaml",
           "prometheus/rules.yaml": "prometheus/rules.yaml"}
    out.update({f"dashboards/{p.name}": f"grafana/dashboards/{p.name}"
                for p in (DEPLOY / "grafana" / "dashboards").glob("*.json")})
    return out


def test_every_chart_file_is_a_relative_link_into_deploy() -> None:
    entries = _chart_entries()
    assert entries
    for entry in entries:
        rel = entry.relative_to(ROOT)
        assert entry.is_symlink(), (
            f"{rel} is a copy that can drift: make it a relative symlink to its source under deploy/ "
            "(`make monitoring` does it for the dashboards and rules)")
        target = os.readlink(entry)
        assert not os.path.isabs(target), f"{rel} -> {target}: absolute, broken in any other checkout"
        source = entry.resolve()
        assert source.is_file(), f"{rel} -> {target}: dangling"
        assert source.is_relative_to(DEPLOY.resolve()), f"{rel} -> {target}: outside deploy/"


def test_the_chart_links_to_every_source_it_ships() -> None:
    # The tenants file too: only this test checks the chart's example of it.
    deploy = DEPLOY.resolve()
    found = {str(p.relative_to(FILES)): str(p.resolve().relative_to(deploy)) if p.resolve().is_relative_to(deploy)
             else "(not in deploy/)" for p in _chart_entries()}
    assert found == _expected()


def test_no_file_is_kept_twice_in_deploy_or_the_chart() -> None:
    seen: dict[str, Path] = {}
    for top in (DEPLOY, CHART):
        for path in sorted(top.rglob("*")):
            if path.is_symlink() or not path.is_file() or path.stat().st_size == 0 or "__pycache__" in path.parts:
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            other = seen.setdefault(digest, path)
            assert other == path, f"{path.relative_to(ROOT)} is a copy of {other.relative_to(ROOT)}: link it instead"


def test_helm_package_stores_the_linked_content(helm: str, tmp_path: Path) -> None:
    proc = subprocess.run([helm, "package", str(CHART), "-d", str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    (tgz,) = tmp_path.glob("switchboard-*.tgz")
    with tarfile.open(tgz) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert not [m.name for m in members.values() if m.issym() or m.islnk()], "links in the package"
        for entry in _chart_entries():
            name = f"switchboard/{entry.relative_to(CHART)}"
            assert name in members and members[name].isfile(), name
            data = tar.extractfile(members[name])
            assert data is not None and data.read() == entry.resolve().read_bytes(), name


def test_a_chart_copied_without_deploy_fails_instead_of_rendering_empty(helm: str, tmp_path: Path) -> None:
    # The links are relative: a copy of helm/switchboard alone has them dangling, and helm says so.
    chart = tmp_path / "switchboard"
    shutil.copytree(CHART, chart, symlinks=True)
    with pytest.raises(HelmError, match="error evaluating symlink"):
        render_docs(helm, [], chart=chart, sets=("kafka.bootstrapServers=k:9092",))
