import os
from pathlib import Path

from services.common.reload import ReloadWatch


def test_due_once_per_change_and_once_per_request(tmp_path: Path) -> None:
    f = tmp_path / "queues.yaml"
    f.write_text("a: 1\n")
    watch = ReloadWatch(str(f), interval=0.0, install_sighup=False)
    assert not watch.due()  # interval 0: no polling, nothing requested
    watch.requested.set()
    assert watch.due() and not watch.due()
    polled = ReloadWatch(str(f), interval=0.001, install_sighup=False)
    os.utime(f, ns=(1, 1))
    f.write_text("a: 22\n")
    import time

    time.sleep(0.01)
    assert polled.due()
    time.sleep(0.01)
    assert not polled.due()  # unchanged since


def test_no_location_is_never_due() -> None:
    watch = ReloadWatch("", interval=0.001, install_sighup=False)
    watch.requested.set()
    assert not watch.due()
