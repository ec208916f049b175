"""The wire contract (protos/switchboard/v1) checked by buf: `buf lint` with the STANDARD rules and
`buf breaking` (FILE rules, why in protos/buf.yaml) against an earlier version of the contract
(below). Offline: the module has no deps, so buf fetches nothing.

buf is pinned and built with `go install` into .cache/bin, as kubeconform is (test_kubeconform.py).
It is here, with the other Go-built tools, rather than in tests/unit: the first build takes
minutes. No broker, no helm.

The baseline of `buf breaking`: the newest tag reachable from HEAD if there is one; else the newest
commit of HEAD's history whose protos/switchboard differs from the checkout's, i.e. the contract
before the last change to it (before the uncommitted change, when there is one). Skipped only when
the history has no such commit (a first commit, or a clone too shallow to reach it)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import ROOT, go_tool

PROTOS = ROOT / "protos"
CONTRACT = "protos/switchboard"
BUF_VERSION = "v1.75.0"  # the newest v1 release on the Go module proxy on 2026-12-02

# What buf.yaml's lint exceptions hide, as (rule, file, message excerpt). Published in v1, so they
# stay; anything else the exceptions would hide is a new finding and fails the test.
KNOWN_EXCEPTIONS = {
    ("RPC_RESPONSE_STANDARD_NAME", "switchboard/v1/routing.proto", '"AgentInfo" should be named "GetAgentResponse"'),
    ("RPC_RESPONSE_STANDARD_NAME", "switchboard/v1/routing.proto",
     '"AgentChange" should be named "WatchAgentsResponse"'),
    ("RPC_RESPONSE_STANDARD_NAME", "switchboard/v1/routing.proto",
     '"ContactPosition" should be named "GetContactPositionResponse"'),
}


@pytest.fixture(scope="session")
def buf() -> str:
    return go_tool("buf", "github.com/bufbuild/buf/cmd/buf", BUF_VERSION)


def run_buf(buf: str, *args: str, cwd: Path = ROOT) -> tuple[int, list[dict[str, Any]], str]:
    """(exit code, the findings as buf's JSON objects, the whole output)."""
    proc = subprocess.run([buf, *args, "--error-format", "json"], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    findings = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc.returncode, findings, proc.stdout + proc.stderr


def copy_module(dest: Path, config: dict[str, Any] | None = None) -> Path:
    """protos/switchboard and protos/buf.yaml (or `config`) copied to dest: a module of its own."""
    shutil.copytree(PROTOS / "switchboard", dest / "switchboard")
    if config is None:
        shutil.copy(PROTOS / "buf.yaml", dest / "buf.yaml")
    else:
        (dest / "buf.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path.name}"
    path.write_text(text.replace(old, new))


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    # GIT_OPTIONAL_LOCKS=0: read only; never refresh the shared index behind someone's back.
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True,
                          env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})


def baseline() -> tuple[str, str] | None:
    """(commit, what it is) of the contract `buf breaking` compares with, or None."""
    if shutil.which("git") is None or _git("rev-parse", "--git-dir").returncode != 0:
        return None
    tag = _git("describe", "--tags", "--abbrev=0", "HEAD")
    if tag.returncode == 0:
        name = tag.stdout.decode().strip()
        return _git("rev-list", "-n1", name).stdout.decode().strip(), f"the last tag, {name}"
    log = _git("log", "--format=%H", "HEAD", "--", CONTRACT)
    for commit in log.stdout.decode().split():
        # Exit 1: this commit's protos differ from the checkout's (committed or not).
        if _git("diff", "--quiet", "--no-ext-diff", commit, "--", CONTRACT).returncode == 1:
            return commit, f"the contract before its last change, at {commit[:12]}"
    return None


def test_buf_yaml_is_v2_offline_and_excludes_the_generated_code() -> None:
    config = yaml.safe_load((PROTOS / "buf.yaml").read_text())
    assert config["version"] == "v2"
    assert config["modules"] == [{"path": ".", "excludes": ["gen"]}]
    assert "deps" not in config and not (PROTOS / "buf.lock").exists(), "deps would need the Buf Schema Registry"
    assert config["lint"]["use"] == ["STANDARD"]
    assert config["breaking"]["use"] == ["FILE"]
    assert set(config["lint"]) <= {"use", "ignore_only"}, "exceptions go in ignore_only, per rule and file"


def test_buf_sees_every_proto_file_and_nothing_generated(buf: str) -> None:
    proc = subprocess.run([buf, "ls-files", "protos"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    expected = sorted(str(p.relative_to(ROOT)) for p in (PROTOS / "switchboard").rglob("*.proto"))
    assert sorted(proc.stdout.split()) == expected


def test_protos_pass_buf_lint(buf: str) -> None:
    code, findings, out = run_buf(buf, "lint", "protos")
    assert code == 0 and findings == [], out


def test_lint_exceptions_hide_exactly_the_published_names(buf: str, tmp_path: Path) -> None:
    """Without buf.yaml's ignore_only, lint finds exactly KNOWN_EXCEPTIONS, each in a file excepted
    for its rule: an exception no longer needed, or a new finding behind one, fails here."""
    config = yaml.safe_load((PROTOS / "buf.yaml").read_text())
    ignore_only: dict[str, list[str]] = config["lint"].pop("ignore_only")
    module = copy_module(tmp_path / "protos", config)
    code, findings, out = run_buf(buf, "lint", str(module))
    assert code != 0, out
    found = {(f["type"], str(Path(f["path"]).relative_to(module)), f["message"]) for f in findings}
    for rule, path, excerpt in KNOWN_EXCEPTIONS:
        assert any(r == rule and p == path and excerpt in m for r, p, m in found), \
            f"{rule} in {path} ({excerpt}) is no longer found: drop it from buf.yaml and KNOWN_EXCEPTIONS\n{out}"
    unknown = {(r, p, m) for r, p, m in found if not any(
        r == rule and p == path and excerpt in m for rule, path, excerpt in KNOWN_EXCEPTIONS)}
    assert unknown == set(), f"lint findings hidden by buf.yaml's exceptions: fix them\n{out}"
    assert {(r, p) for r, p, _ in found} == {(rule, p) for rule, paths in ignore_only.items() for p in paths}, \
        "every ignore_only entry hides something"


def test_lint_refuses_a_badly_named_message_and_a_new_nonstandard_rpc(buf: str, tmp_path: Path) -> None:
    module = copy_module(tmp_path / "protos")
    edit(module / "switchboard/v1/envelope.proto", "message TraceContext {",
         "message trace_context_v2 {\n  string traceparent = 1;\n}\n\nmessage TraceContext {")
    code, findings, out = run_buf(buf, "lint", str(module))
    assert code != 0, out
    assert [(f["type"], f["path"]) for f in findings] == \
        [("MESSAGE_PASCAL_CASE", str(module / "switchboard/v1/envelope.proto"))], out
    # A new RPC in routing.proto is not covered by the file's exception: the exceptions test sees it.
    module = copy_module(tmp_path / "again")
    edit(module / "switchboard/v1/routing.proto", "  rpc GetAgent(",
         "  rpc GetQueue(GetQueueStatsRequest) returns (QueueStats);\n  rpc GetAgent(")
    config = yaml.safe_load((module / "buf.yaml").read_text())
    del config["lint"]["ignore_only"]
    (module / "buf.yaml").write_text(yaml.safe_dump(config))
    _, findings, out = run_buf(buf, "lint", str(module))
    assert any(f["type"] == "RPC_RESPONSE_STANDARD_NAME" and '"QueueStats"' in f["message"] for f in findings), out


def test_protos_are_compatible_with_the_previous_contract(buf: str, tmp_path: Path) -> None:
    base = baseline()
    if base is None:
        pytest.skip(f"no earlier version of {CONTRACT} in this clone's history to compare with "
                    "(no tag, and no earlier commit that changed it: a first commit or a shallow clone)")
    commit, what = base
    archive = _git("archive", "--format=tar", commit, CONTRACT)
    assert archive.returncode == 0, archive.stderr.decode()
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tmp_path, filter="data")
    against = tmp_path / "protos"
    # Its own buf.yaml, the same layout: buf looks no further up for one, and gen/ stays excluded.
    shutil.copy(PROTOS / "buf.yaml", against / "buf.yaml")
    assert list(against.rglob("*.proto")), f"{commit} has no .proto files under {CONTRACT}"
    code, findings, out = run_buf(buf, "breaking", "protos", "--against", str(against))
    assert code == 0 and findings == [], f"breaking changes against {what}:\n{out}"


BREAKS = {
    "field removed": ("envelope.proto", "  string source = 5;\n", "",
                      "FIELD_NO_DELETE", 'field "5" with name "source" on message "Envelope" was deleted'),
    "field number changed": ("envelope.proto", "string tenant_id = 2;", "string tenant_id = 7;",
                             "FIELD_NO_DELETE", 'field "2" with name "tenant_id" on message "Envelope" was deleted'),
    "field renamed (JSON name)": ("routing.proto", "uint32 waiting = 3;", "uint32 waiting_contacts = 3;",
                                  "FIELD_SAME_JSON_NAME", 'from "waiting" to "waitingContacts"'),
    # Not caught by WIRE_JSON: why buf.yaml uses FILE.
    "rpc removed": ("routing.proto", "  rpc GetContactPosition(GetContactPositionRequest) returns (ContactPosition);\n",
                    "", "RPC_NO_DELETE", 'RPC "GetContactPosition" on service "RoutingService" was deleted'),
    # A bare name: every use of it is renamed, so that the module still compiles.
    "message renamed": ("survey.proto", "Answer", "SurveyAnswer", "MESSAGE_NO_DELETE", 'message "Answer" was deleted'),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_breaking_refuses_a_break(buf: str, tmp_path: Path, case: str) -> None:
    """The breaking check is not vacuous: each edit of a copy of today's protos is refused."""
    file, old, new, rule, excerpt = BREAKS[case]
    module = copy_module(tmp_path / "protos")
    if old.isidentifier():
        path = module / "switchboard/v1" / file
        path.write_text(re.sub(rf"\b{old}\b", new, path.read_text()))
    else:
        edit(module / "switchboard/v1" / file, old, new)
    code, findings, out = run_buf(buf, "breaking", str(module), "--against", "protos")
    assert code != 0, out
    assert any(f["type"] == rule and excerpt in f["message"] for f in findings), out
