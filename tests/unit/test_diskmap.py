"""DiskMap: bytes -> bytes in a SQLite file, the store of tables that outgrow the heap."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.diskmap import DiskMap, state_dir


def test_a_mapping_of_bytes_on_disk(tmp_path: Path) -> None:
    m = DiskMap("t", path=tmp_path / "t.sqlite")
    m[b"a"] = b"1"
    m[b"b"] = b"2"
    m[b"a"] = b"3"  # overwrite: still two keys
    assert len(m) == 2 and m[b"a"] == b"3" and m.get(b"zz") is None
    assert sorted(m) == [b"a", b"b"]
    assert m.pop(b"b") == b"2" and len(m) == 1
    with pytest.raises(KeyError):
        del m[b"b"]
    m.clear()
    assert len(m) == 0 and list(m) == []
    m.close()


def test_state_dir_honours_switchboard_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_STATE_DIR", str(tmp_path / "state"))
    d = state_dir("survey")
    assert d.parent == tmp_path / "state" and d.is_dir() and d.name.startswith("switchboard-survey-")
