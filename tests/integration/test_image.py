"""The images `make image` builds (tools/image.sh, deploy/Dockerfile), run as a deployment runs them:
`switchboard topics create` from the image, then each service from its image (ingestion, routing,
survey from switchboard; enrichment from switchboard-enrichment) with the example configs it carries,
as uid 10001, through `buildah run --isolation chroot` on the host's network (loopback included)
against the test broker: each ready on /readyz, each exiting 0 on SIGTERM. The switchboard image has
neither lingua nor the developer tools, and enrichment started from it stops naming the other image.

The images are built once per session, and only when their source hash changed, so a `make image`
before is reused: from nothing ~3 min (debootstrap ~2 min, then cached in .cache/image), ~50 s after
a source change, ~1 s otherwise. Needs buildah (tools/image.sh tools installs it with debootstrap);
skipped only where it cannot be installed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from switchboard_dev.broker import BrokerHandle, free_port
from tests import helpers
from tests.helpers import ROOT, http_get, wait_until

# The first test builds the images when they are out of date (~3 min from nothing, on 2 cores).
pytestmark = [pytest.mark.broker, pytest.mark.timeout(900)]

IMAGE_SH = ROOT / "tools" / "image.sh"
EXAMPLES = "/etc/switchboard/examples"
# service -> (image, gRPC port variable or None, the example config it reads)
SERVICES = {
    "ingestion": ("switchboard", "INGESTION_GRPC_PORT", {"SWITCHBOARD_TENANTS_FILE": f"{EXAMPLES}/tenants.yaml"}),
    "enrichment": ("enrichment", None, {"ENRICHMENT_RULES_FILE": f"{EXAMPLES}/enrichment.yaml"}),
    "routing": ("switchboard", "ROUTING_GRPC_PORT", {"SWITCHBOARD_QUEUES_FILE": f"{EXAMPLES}/queues.yaml"}),
    "survey": ("switchboard", "SURVEY_GRPC_PORT", {"SURVEY_POLICY_FILE": f"{EXAMPLES}/survey.yaml"}),
}


def _buildah_env() -> dict[str, str]:
    env = dict(os.environ, IMAGE_TOOL="buildah")
    conf = ROOT / ".cache" / "image" / "containers.conf"
    if env.setdefault("CONTAINERS_CONF", str(conf)) == str(conf) and not conf.exists():
        # As tools/image.sh: buildah's default ulimits are refused where the hard limits are lower.
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text("[containers]\ndefault_ulimits = []\n")
    return env


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """{"switchboard": name, "enrichment": name} of the built images (built here when out of date)."""
    if shutil.which("buildah") is None:
        res = subprocess.run([str(IMAGE_SH), "tools"], capture_output=True, text=True, timeout=600)
        if shutil.which("buildah") is None:
            pytest.skip(f"buildah is not installed and cannot be installed here (tools/image.sh tools: "
                        f"{(res.stderr or res.stdout).strip()[-300:]})")
    started = time.monotonic()
    res = subprocess.run([str(IMAGE_SH), "build"], env=_buildah_env(), capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, f"tools/image.sh build failed:\n{res.stderr[-6000:]}"
    built = dict(line.split(" ", 1) for line in res.stdout.strip().splitlines()[-2:])
    print(f"\nimages ({time.monotonic() - started:.0f} s): {built}", flush=True)
    common, enrichment = built
    assert enrichment.split(":")[0].endswith("-enrichment"), built
    return {"switchboard": common, "enrichment": enrichment}


@dataclass
class Container:
    """A buildah working container of an image; processes run in it with the host's network."""

    id: str

    @classmethod
    def of(cls, image: str) -> Container:
        name = f"switchboard-test-{uuid.uuid4().hex[:8]}"
        res = subprocess.run(["buildah", "from", "--pull=never", "--name", name, image], env=_buildah_env(),
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        return cls(res.stdout.strip().splitlines()[-1])

    def argv(self, command: list[str], env: dict[str, str]) -> list[str]:
        flags = [f"--env={k}={v}" for k, v in env.items()]
        return ["buildah", "run", "--isolation", "chroot", "--network", "host", *flags, self.id, "--", *command]

    def run(self, command: list[str], env: dict[str, str] | None = None, timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(command, env or {}), env=_buildah_env(), capture_output=True, text=True,
                              timeout=timeout)

    def start(self, command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            return subprocess.Popen(self.argv(command, env), env=_buildah_env(), stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def remove(self) -> None:
        subprocess.run(["buildah", "rm", self.id], env=_buildah_env(), capture_output=True, timeout=120)


@pytest.fixture
def containers(images: dict[str, str]) -> Iterator[dict[str, Container]]:
    made = {kind: Container.of(image) for kind, image in images.items()}
    yield made
    for container in made.values():
        container.remove()


def _descendants(pid: int) -> list[int]:
    """pid's descendants, parents before children (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            out.append(child)
            todo.append(child)
    return out


def _stop(svc: helpers.ServiceProcess) -> int:
    """SIGTERM to the service's own process (buildah run answers its own SIGTERM by killing it): the
    exit code of the service, as an orchestrator's stop would see it."""
    if svc.proc.poll() is None:
        # buildah run -> buildah-chroot-runtime -> buildah-chroot-exec -> the service: the last one.
        chain = _descendants(svc.proc.pid)
        os.kill(chain[-1] if chain else svc.proc.pid, signal.SIGTERM)
    try:
        return svc.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(svc.proc.pid, signal.SIGKILL)
        svc.proc.wait(10)
        raise AssertionError(f"{svc.name} did not exit within 60 s of SIGTERM") from None


def test_the_switchboard_image_leaves_lingua_and_the_developer_tools_out(containers: dict[str, Container]) -> None:
    common, enrichment = containers["switchboard"], containers["enrichment"]
    probe = ("import importlib.util as u, os, sys; "
             "print(os.getuid(), os.getgid(), sys.version_info[:2], bool(u.find_spec('lingua')), "
             "bool(u.find_spec('switchboard_dev')))")
    res = common.run(["python", "-c", probe])
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("(")[0].split() == ["10001", "10001"]
    assert res.stdout.strip().endswith("(3, 11) False False"), res.stdout
    res = common.run(["python", "-m", "services.enrichment"])
    assert res.returncode != 0
    assert "enrichment needs lingua-language-detector" in res.stderr
    assert "switchboard-enrichment" in res.stderr
    res = enrichment.run(["python", "-c", probe])
    assert res.stdout.strip().endswith("(3, 11) True False"), res.stdout + res.stderr


def test_each_service_starts_from_its_image_and_is_ready_on_the_broker(
    broker: BrokerHandle, containers: dict[str, Container], tmp_path: Path
) -> None:
    started = time.monotonic()
    prefix = f"img{uuid.uuid4().hex[:8]}."
    kafka = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "SWITCHBOARD_TOPIC_PREFIX": prefix,
             "SWITCHBOARD_EXACTLY_ONCE": "true" if broker.supports_transactions else "false"}
    res = containers["switchboard"].run(["switchboard", "topics", "create", "--partitions", "2"], kafka)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"created {prefix}contacts.inbound.v1" in res.stdout, res.stdout

    running: list[helpers.ServiceProcess] = []
    try:
        for name, (kind, grpc_var, config) in SERVICES.items():
            # Free ports, not 9101-9104: the host's network is shared with whatever else runs here.
            port = free_port()
            env = {**kafka, **config, "SWITCHBOARD_HTTP_PORT": str(port), "SWITCHBOARD_GRPC_INSECURE": "true",
                   "SWITCHBOARD_INSTANCE_ID": f"{name}-image"}
            grpc_port = None
            if grpc_var:
                grpc_port = free_port()
                env[grpc_var] = str(grpc_port)
            log = tmp_path / f"{name}.log"
            proc = containers[kind].start(["python", "-m", f"services.{name}"], env, log)
            svc = helpers.ServiceProcess(name, proc, port, log, grpc_port)
            helpers.STARTED.append(svc)  # its log goes into the report of a failure
            running.append(svc)

        def ready() -> list[str]:
            pending = []
            for svc in running:
                if svc.proc.poll() is not None:  # at once, not after the timeout
                    pytest.fail(f"{svc.name} exited with {svc.proc.returncode}:\n{svc.log()[-3000:]}")
                try:
                    status, _ = http_get(f"http://127.0.0.1:{svc.http_port}/readyz", 1.0)
                except OSError:
                    status = 0
                if status != 200:
                    pending.append(svc.name)
            assert not pending, f"not ready: {pending}"
            return pending

        wait_until(lambda: ready() == [], "every service from the image ready on /readyz", timeout=180)
        for svc in running:
            status, body = http_get(svc.metrics_url)
            assert status == 200 and "switchboard_" in body, svc.name
    finally:
        codes = {svc.name: _stop(svc) for svc in running}
    assert codes == dict.fromkeys(SERVICES, 0), codes
    print(f"\nservices from the images: ready and stopped in {time.monotonic() - started:.0f} s", flush=True)
