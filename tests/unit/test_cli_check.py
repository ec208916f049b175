"""`switchboard check`'s usage errors (exit 2, one line, nothing asked); the checks themselves run
against real services in tests/integration/test_grpc_security.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_:
        main(["check", *argv], plugins=())
    return int(exit_.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    ((), "nothing to check"),
    (("--ready", "routing:9103"), "expected http://host:port"),
    (("--grpc", "routing"), "expected HOST:PORT"),
    (("--grpc", "routing:grpc"), "expected HOST:PORT"),
    (("--grpc", "h:1", "--ca", "/nonexistent/ca.crt"), "cannot read it"),
])
def test_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
                                           message: str) -> None:
    code, err = _run(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_a_ca_that_is_not_pem_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("not a certificate")
    code, err = _run(capsys, "--grpc", "h:1", "--ca", str(ca))
    assert code == 2 and "not a PEM certificate" in err

