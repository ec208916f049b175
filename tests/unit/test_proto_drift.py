"""The committed generated code must be exactly what protoc makes from protos/ today."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_matches_protos(tmp_path: Path) -> None:
    protos = sorted(str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos" / "switchboard").rglob("*.proto"))
    assert protos, "no .proto files found"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'protos'}", f"--python_out={tmp_path}",
         f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", *protos],
        check=True, cwd=ROOT,
    )
    committed = ROOT / "protos" / "gen" / "switchboard" / "v1"
    fresh = tmp_path / "switchboard" / "v1"
    fresh_files = sorted(p.name for p in fresh.iterdir())
    committed_files = sorted(p.name for p in committed.iterdir() if p.name not in ("__init__.py", "__pycache__"))
    assert committed_files == fresh_files, "generated file set differs: run `make proto` and commit"
    _, mismatch, errors = filecmp.cmpfiles(committed, fresh, fresh_files, shallow=False)
    assert not mismatch and not errors, f"stale generated code {mismatch or errors}: run `make proto` and commit"
