"""`switchboard run` (what `make run` calls): a broker, the topics, the four services as separate
processes, demo customer profiles and the simulator, until Ctrl-C.

Every service runs in its own session (process group) with its output in `.run/logs/<name>.log`,
so Ctrl-C in the terminal reaches only this supervisor, which then stops things in order: the
simulator (it closes its open contacts), the services (SIGTERM to each group, SIGKILL after 20 s),
then the broker it started. An atexit hook does the same if the supervisor dies of an exception,
so no process outlives it. A service that exits while running stops everything with exit code 1
and shows the end of its log.
"""

from __future__ import annotations

import argparse
import atexit
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

from services.cli.topics import topic_partitions
from services.common.codec import HeaderList
from switchboard_dev.broker import REPO_ROOT, BrokerHandle

SERVICES: tuple[tuple[str, int], ...] = (
    ("ingestion", 9101), ("enrichment", 9102), ("routing", 9103), ("survey", 9104),
)
GRPC_PORT = 50051
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
CONFIG_DIR = REPO_ROOT / "deploy" / "config"
QUEUES_FILE = CONFIG_DIR / "queues.yaml"
INGEST_GRPC_PORT = 50052
SURVEY_GRPC_PORT = 50053
# Each service's example configuration file, by env var (missing files: the service's defaults).
CONFIG_FILES: dict[str, dict[str, Path]] = {
    "ingestion": {"SWITCHBOARD_TENANTS_FILE": CONFIG_DIR / "tenants.yaml"},
    "enrichment": {"ENRICHMENT_RULES_FILE": CONFIG_DIR / "enrichment.yaml"},
    "routing": {"SWITCHBOARD_QUEUES_FILE": QUEUES_FILE},
    "survey": {"SURVEY_POLICY_FILE": CONFIG_DIR / "survey.yaml"},
}


class UserError(Exception):
    """Something the user can fix; printed as one line, exit code 2."""


class StopSignals:
    """SIGINT/SIGTERM set `event` instead of raising. While `critical` (starting the broker, whose
    process would be orphaned by a KeyboardInterrupt) the first Ctrl-C is noted and acted upon
    once the step is done; a second one gives up at once."""

    def __init__(self, out: Callable[[str], None] = print) -> None:
        self.event = threading.Event()
        self.count = 0
        self.critical = False
        self._out = out

    def install(self) -> StopSignals:
        signal.signal(signal.SIGINT, self._handler)
        signal.signal(signal.SIGTERM, self._handler)
        return self

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.event.set()
        if self.critical:
            if self.count >= 2:
                raise KeyboardInterrupt
            self._out("\n(stopping as soon as the broker is up; Ctrl-C again to give up now)")

    @property
    def stopped(self) -> bool:
        return self.event.is_set()


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


@dataclass
class Service:
    name: str
    http_port: int
    log_path: Path
    proc: subprocess.Popen[bytes]
    log_file: IO[bytes] = field(repr=False)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/readyz", timeout=1.0) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False


class Supervisor:
    def __init__(self, signals: StopSignals, out: Callable[[str], None] = print,
                 root: Path = REPO_ROOT) -> None:
        self.signals = signals
        self.out = out
        self.root = root
        self.log_dir = root / ".run" / "logs"
        self.broker: BrokerHandle | None = None
        self.services: list[Service] = []
        self.failed: Service | None = None
        self._stopped = False
        self._lock = threading.Lock()
        # IngestService token for the demo tenant, fresh per run (a local demo, printed in the banner).
        self.ingest_token = os.environ.get("ACME_INGEST_TOKEN") or f"acme-{secrets.token_hex(12)}"
        atexit.register(self.shutdown, quiet=True)

    # -- start -----------------------------------------------------------------------------------

    def check_ports(self) -> None:
        busy = [str(p) for p in [port for _, port in SERVICES] + [GRPC_PORT] if port_in_use(p)]
        if busy:
            raise UserError(f"port(s) {', '.join(busy)} already in use (another `switchboard run`?): "
                            "stop it first")

    def start_broker(self) -> BrokerHandle:
        from switchboard_dev.broker import ensure_broker

        self.signals.critical = True
        try:
            self.broker = ensure_broker(log=self.out)
        finally:
            self.signals.critical = False
        return self.broker

    def kafka_env(self) -> dict[str, str]:
        assert self.broker is not None
        env = dict(os.environ)
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.broker.bootstrap
        if not self.broker.supports_transactions:
            env["SWITCHBOARD_EXACTLY_ONCE"] = "false"
        return env

    def provision(self) -> None:
        from confluent_kafka.admin import AdminClient

        from services.common.config import KafkaSettings
        from services.common.topics import ALL_TOPICS, provision

        assert self.broker is not None
        settings = KafkaSettings.from_env(self.kafka_env())
        partitions = topic_partitions(local=self.broker.kind != "external")
        admin = AdminClient({**settings.client_config(), "log_level": 2})
        created = provision(admin, prefix=settings.topic_prefix, partitions=partitions)
        each = f"{partitions} partitions each" if partitions else "declared partition counts"
        self.out(f"topics: {len(created)} created, {len(ALL_TOPICS) - len(created)} already there ({each})")

    def publish_profiles(self, tenant: str) -> None:
        """Demo CRM profiles (VIPs, Spanish speakers...) the simulator's customers use. Sent before
        the services start, so enrichment has them in its table when it reports ready."""
        from services.cli.base import quiet_producer
        from services.common import topics
        from services.common.codec import CONTENT_TYPE_PROTOBUF
        from services.common.config import KafkaSettings
        from services.common.kafka import Output, produce_all
        from switchboard_dev.simulate import demo_profiles

        settings = KafkaSettings.from_env(self.kafka_env())
        producer = quiet_producer(settings, "switchboard-supervisor")
        topic = settings.topic(topics.CUSTOMERS_PROFILES.name)
        headers: HeaderList = [("content-type", CONTENT_TYPE_PROTOBUF.encode())]
        profiles = demo_profiles(tenant, time.time())
        errors: list[str] = []
        produce_all(producer, [Output(topic, p.customer_id.encode(), p.SerializeToString(), headers)
                               for p in profiles],
                    lambda err, msg: errors.append(str(err)) if err is not None else None)
        left = producer.flush(30)
        if left or errors:
            raise RuntimeError(f"demo profiles not acknowledged by the broker: {(errors or ['timeout'])[0]}")
        self.out(f"profiles: {len(profiles)} demo customer profiles on {topic}")

    def start_services(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        base = self.kafka_env()
        base["PYTHONUNBUFFERED"] = "1"
        # A local demo on this machine: gRPC plaintext, and routing/survey without tokens, unless the
        # user configured TLS or tokens (SWITCHBOARD_GRPC_*) themselves. IngestService still needs the
        # per-run acme token. Deployed services refuse to start this way (services/common/grpc_security.py).
        if not any(k.startswith("SWITCHBOARD_GRPC_TLS_") for k in os.environ):
            base.setdefault("SWITCHBOARD_GRPC_INSECURE", "true")
        for name, port in SERVICES:
            env = dict(base, SWITCHBOARD_HTTP_PORT=str(port), SWITCHBOARD_INSTANCE_ID=f"{name}-local")
            if name == "routing":
                env["ROUTING_GRPC_PORT"] = str(GRPC_PORT)
            elif name == "ingestion":
                env["INGESTION_GRPC_PORT"] = str(INGEST_GRPC_PORT)
                env.setdefault("ACME_INGEST_TOKEN", self.ingest_token)
            elif name == "survey":
                env["SURVEY_GRPC_PORT"] = str(SURVEY_GRPC_PORT)
            for var, path in CONFIG_FILES.get(name, {}).items():
                if var in os.environ:
                    continue  # the user's own file wins
                if path.exists():
                    env[var] = str(path)
                else:
                    self.out(f"warning: {self._rel(path)} not found: {name} runs with its defaults")
            log_path = self.log_dir / f"{name}.log"
            log_file = open(log_path, "wb")  # noqa: SIM115 (open for the process' life)
            proc = subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=self.root, env=env,
                                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            self.services.append(Service(name, port, log_path, proc, log_file))
        names = ", ".join(s.name for s in self.services)
        self.out(f"services: started {names} (logs in {self._rel(self.log_dir)}/)")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> bool:
        """Until every /readyz answers 200. False (after saying why) when one died, timed out or
        the user pressed Ctrl-C."""
        deadline = time.monotonic() + timeout
        pending = list(self.services)
        started = time.monotonic()
        while pending:
            if self.signals.stopped:
                return False
            for svc in list(pending):
                if not svc.alive:
                    self.failed = svc
                    self._report_death(svc, "while starting")
                    return False
                if svc.ready():
                    pending.remove(svc)
                    self.out(f"  {svc.name} ready ({time.monotonic() - started:.1f} s)")
            if pending and time.monotonic() > deadline:
                for svc in pending:
                    self.out(f"error: {svc.name} not ready after {timeout:.0f} s "
                             f"(http://localhost:{svc.http_port}/readyz); "
                             f"last lines of {self._rel(svc.log_path)}:")
                    self.out(_indent(tail(svc.log_path)))
                self.failed = pending[0]
                return False
            if pending:
                self.signals.event.wait(0.3)
        return True

    # -- while running ---------------------------------------------------------------------------

    def watch(self, stop: threading.Event) -> threading.Thread:
        """A thread that notices a service exiting, reports it and sets `stop`."""

        def run() -> None:
            while not stop.is_set() and not self._stopped:
                for svc in self.services:
                    if not svc.alive and self.failed is None:
                        self.failed = svc
                        stop.set()
                        return
                time.sleep(0.5)

        thread = threading.Thread(target=run, name="watchdog", daemon=True)
        thread.start()
        return thread

    def banner(self, tenant: str) -> str:
        assert self.broker is not None
        rel_logs = self._rel(self.log_dir)
        exe = self._rel(Path(sys.executable).parent / "switchboard")
        rows = [f"broker    {self.broker.kind} at {self.broker.bootstrap}"]
        rows += [f"{'metrics' if i == 0 else '':9} {name:<11} http://localhost:{port}/metrics"
                 for i, (name, port) in enumerate(SERVICES)]
        rows += [
            f"gRPC      routing     localhost:{GRPC_PORT} (agents, queues, positions; health, reflection)",
            f"          ingestion   localhost:{INGEST_GRPC_PORT} (IngestService.Publish, "
            f"token for acme: {self.ingest_token})",
            f"          survey      localhost:{SURVEY_GRPC_PORT} (SurveyService.GetScores)",
            f"logs      {rel_logs}/<service>.log",
            "",
            "try, in another terminal:",
            f"  {exe} agents --tenant {tenant}",
            f"  {exe} queues --tenant {tenant}",
            f"  curl -s localhost:{SERVICES[2][1]}/metrics | grep switchboard_contacts_",
            f"  export KAFKA_BOOTSTRAP_SERVERS={self.broker.bootstrap}   # for publish/topics/simulate",
            "",
            "Ctrl-C stops the simulator, the services and the broker.",
        ]
        width = max(len(r) for r in rows) + 2
        title = " Switchboard is running "
        top = "+-" + title + "-" * (width - len(title) - 1) + "+"
        return "\n".join([top, *[f"| {r:<{width - 2}} |" for r in rows], "+" + "-" * width + "+"])

    # -- stop ------------------------------------------------------------------------------------

    def shutdown(self, quiet: bool = False) -> None:
        """SIGTERM every service's process group, SIGKILL what is left after 20 s, stop the broker.
        Idempotent (also the atexit hook)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        say: Callable[[str], None] = (lambda _: None) if quiet else self.out
        if not self.services and (self.broker is None or self.broker.kind == "external"):
            return  # nothing was started
        running = [s for s in self.services if s.alive]
        if running:
            say(f"stopping {', '.join(s.name for s in running)} ...")
        for svc in running:
            _signal_group(svc.proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for svc in running:
            while svc.alive and time.monotonic() < deadline and self.signals.count < 3:
                time.sleep(0.1)
            if svc.alive:
                say(f"  {svc.name} did not stop within {STOP_TIMEOUT:.0f} s: killing it")
            _signal_group(svc.proc, signal.SIGKILL)  # also whatever the service itself started
            try:
                svc.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                say(f"  {svc.name} (pid {svc.proc.pid}) did not die")
        for svc in self.services:
            svc.log_file.close()
        for svc in running:
            if svc.proc.returncode not in (0, None) and svc is not self.failed:
                say(f"  {svc.name} {_exit_status(svc.proc.returncode)} (see {self._rel(svc.log_path)})")
        if self.broker is not None and self.broker.kind != "external":
            say(f"stopping the broker ({self.broker.kind}) ...")
            try:
                self.broker.cleanup()
            except Exception as exc:  # still try to say so; nothing else to stop
                say(f"  broker did not stop cleanly: {exc}")
        self.broker = None
        say("stopped.")

    def report_failure(self) -> None:
        if self.failed is not None and self.failed.proc.poll() is not None:
            self._report_death(self.failed, "while running")

    def _report_death(self, svc: Service, when: str) -> None:
        self.out(f"\nerror: {svc.name} {_exit_status(svc.proc.returncode)} {when}; "
                 f"last lines of {self._rel(svc.log_path)}:")
        self.out(_indent(tail(svc.log_path)))

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the service leads its own group (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass


def _exit_status(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def main(args: argparse.Namespace) -> int:
    """`switchboard run`: the exit code."""
    from services.common.config import ConfigError, KafkaSettings
    from switchboard_dev.simulate import Progress, SimulationError, config_from_args, run_simulation

    def out(line: str) -> None:
        print(line, flush=True)

    signals = StopSignals(out).install()
    sup = Supervisor(signals, out)
    code = 0
    try:
        sup.check_ports()
        topic_partitions(local=True)  # a bad SWITCHBOARD_TOPIC_PARTITIONS fails before anything starts
        broker = sup.start_broker()
        if signals.stopped:
            return 130
        sup.provision()
        sup.publish_profiles(args.tenant)
        sup.start_services()
        out(f"waiting for the services to be ready (up to {READY_TIMEOUT:.0f} s) ...")
        if not sup.wait_ready():
            return 130 if signals.stopped and sup.failed is None else 1
        out(sup.banner(args.tenant))
        sup.watch(signals.event)
        if args.no_simulate:
            out("no simulator (--no-simulate): publish your own events; Ctrl-C stops everything")
            started = time.monotonic()
            while not signals.event.wait(0.5):
                if args.duration and time.monotonic() - started >= args.duration:
                    break
        else:
            config = config_from_args(args)
            settings = KafkaSettings.from_env({**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap})
            out(f"simulator: tenant {config.tenant!r}, {config.agents} agents, {config.rate:g} contacts/s, "
                f"run {config.run_id}")
            run_simulation(settings, config, signals.event, duration=args.duration, progress=Progress())
        if sup.failed is not None:
            sup.report_failure()
            code = 1
    except (UserError, ConfigError) as exc:
        out(f"error: {exc}")
        code = 2
    except SimulationError as exc:
        out(f"error: simulator: {exc}")
        code = 1
    except KeyboardInterrupt:
        out("\ninterrupted")
        code = 130
    except Exception as exc:
        out(f"error: {type(exc).__name__}: {exc}")
        code = 1
    finally:
        try:
            sup.shutdown()
        except KeyboardInterrupt:  # a further Ctrl-C while stopping: finish the job brutally
            for svc in sup.services:
                _signal_group(svc.proc, signal.SIGKILL)
            if sup.broker is not None:
                sup.broker.stop(kill=True)
            raise
    return code

