"""One service alone as a real process (`python -m services.<name>`, env as tests/conftest.py
service_env), fed a pre-loaded backlog of BENCH_EVENTS events on its input topic(s).

Figures: input messages/s = (inputs - 1) / the span from the first to the last record the service
wrote on its output topics (CreateTime of the records, as the ceiling stage; for ingestion and
enrichment, one output per input, this is the output rate), its ratio to the ceiling for the same
payload and mode (measured again right before the service), CPU seconds of the process per 1,000
events (/proc/<pid>/stat utime+stime, from ready to the last input offset committed) and its peak
RSS (/proc/<pid>/status VmHWM, start-up included).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import ceiling_bench, streams
from services.common.codec import CONTENT_TYPE_PROTOBUF
from switchboard_dev.broker import free_port

# name: (inputs in preload order as (topic, content type, builder of n records), output topics whose
# records span the run, the ceiling's payload to compare with, the output topic counted exactly or None,
# setup inputs: produced once the service is ready and waited for, before the measured backlog)
Builder = Callable[[int], list[tuple[bytes, bytes]]]
Inputs = list[tuple[str, str, Builder]]
SERVICES: dict[str, tuple[Inputs, list[str], str, str | None, Inputs]] = {
    "ingestion": ([("contacts.inbound.v1", "application/json", streams.json_events)],
                  ["contacts.normalized.v1"], "json", "contacts.normalized.v1", []),
    "enrichment": ([("contacts.normalized.v1", CONTENT_TYPE_PROTOBUF, streams.protobuf_events)],
                   ["contacts.enriched.v1"], "protobuf", "contacts.enriched.v1", []),
    # Setup: agents log in and say ready (2 events each, 250 per tenant) and routing reads them; then
    # the measured backlog of n contact events (arrivals and ends) is produced while it runs (the
    # producer is ~10x faster than routing). Each contact event writes lifecycle events (assignments
    # too) and state records (routing.state.v1) in the same transaction.
    "routing": ([("contacts.enriched.v1", CONTENT_TYPE_PROTOBUF, streams.enriched_contact_events)],
                ["contacts.lifecycle.v1", "routing.assignments.v1"], "protobuf", None,
                [("agents.events.v1", CONTENT_TYPE_PROTOBUF, lambda n: streams.agent_login_events())]),
    # Lifecycle events (queued, assigned, answered, ended per contact); each end is surveyed at once
    # (no policy file: no delay, no sampling, no suppression) -> request + 2 state records.
    "survey": ([("contacts.lifecycle.v1", CONTENT_TYPE_PROTOBUF, streams.lifecycle_events)],
               ["surveys.requests.v1", "surveys.state.v1"], "protobuf", None, []),
}
GRPC_PORT_VARS = {"routing": "ROUTING_GRPC_PORT", "ingestion": "INGESTION_GRPC_PORT", "survey": "SURVEY_GRPC_PORT"}


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def _service_pid(proc: subprocess.Popen[bytes]) -> int:
    """The service's own pid (under py-spy, py-spy's child)."""
    if Path(str(proc.args[0])).name != "py-spy":  # type: ignore[index]
        return proc.pid
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    return int(children[0]) if children else proc.pid


def measure(name: str, profile: Path | None = None) -> dict[str, Any]:
    inputs, out_bases, payload, exact_base, setup = SERVICES[name]
    n = streams.events_count()
    prefix = streams.new_prefix()
    ends: dict[str, dict[int, int]] = {}
    backlog = [(prefix + base, ctype, build(n)) for base, ctype, build in inputs]
    n_inputs = sum(len(records) for _, _, records in backlog)
    if not setup:
        for topic, ctype, records in backlog:
            ends[topic] = streams.preload(topic, records, ctype)
    eos = streams.broker().supports_transactions
    # The ceiling again right before the service, same payload and mode: the broker's speed drifts by
    # tens of % within one run (JIT warm-up, other work on the machine), the ceiling stage's figure
    # from minutes earlier made services look faster than the bare client.
    adjacent = ceiling_bench.pass_through(payload, eos, streams.json_events(n) if payload == "json"
                                          else streams.protobuf_events(n),
                                          "application/json" if payload == "json" else CONTENT_TYPE_PROTOBUF)
    port = free_port()
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=streams.broker().bootstrap, SWITCHBOARD_TOPIC_PREFIX=prefix,
               SWITCHBOARD_EXACTLY_ONCE="true" if eos else "false", PYTHONUNBUFFERED="1",
               SWITCHBOARD_HTTP_PORT=str(port), SWITCHBOARD_INSTANCE_ID=f"{name}-bench-{uuid.uuid4().hex[:6]}",
               SWITCHBOARD_LOG_LEVEL="WARNING", SWITCHBOARD_GRPC_INSECURE="true")  # local broker and ports
    if name in GRPC_PORT_VARS:
        env[GRPC_PORT_VARS[name]] = str(free_port())
    log_path = Path(tempfile.gettempdir()) / f"bench-{prefix}{name}.log"
    argv = [sys.executable, "-m", f"services.{name}"]
    if profile is not None:
        # py-spy starts the service as its child (allowed to trace it), samples on-CPU stacks 100/s and
        # writes them folded (one "frame;frame;... count" line per stack) when the service exits
        argv = [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking", "--format", "raw", "-r", "100",
                "-o", str(profile), "--", *argv]
    with open(log_path, "ab") as out:
        # BENCH_CODE_ROOT: run the service from another tree (e.g. `git archive` of an older commit) to
        # measure a change before/after against the same broker and ceiling
        code_root = os.environ.get("BENCH_CODE_ROOT") or str(streams.ROOT)
        proc = subprocess.Popen(argv, env=dict(env, PYTHONPATH=code_root), cwd=code_root, stdout=out,
                                stderr=subprocess.STDOUT)

    def alive() -> None:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {log_path.read_text()[-2000:]}")

    try:
        start = time.monotonic()
        while not _ready(port):
            alive()
            if time.monotonic() - start > 120:
                raise RuntimeError(f"{name} not ready in 120 s: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        ready_seconds = time.monotonic() - start
        for base, ctype, build in setup:
            setup_ends = streams.preload(prefix + base, build(n), ctype)
            streams.wait_committed(f"{prefix}switchboard-{name}", prefix + base, setup_ends, 300, alive)
        if setup:
            for topic, ctype, records in backlog:
                ends[topic] = streams.preload(topic, records, ctype)
        pid = _service_pid(proc)
        cpu_ready = streams.proc_cpu_seconds(pid)
        ready_at = time.time()
        done_at = ready_at
        for topic, topic_ends in ends.items():
            done_at = streams.wait_committed(f"{prefix}switchboard-{name}", topic, topic_ends,
                                             max(300.0, n_inputs / 50), alive)
        cpu = streams.proc_cpu_seconds(pid) - cpu_ready
        peak = streams.proc_peak_rss_mib(pid)
    finally:
        if proc.poll() is None:  # the service itself (py-spy writes its profile when its child exits)
            os.kill(_service_pid(proc), signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    span = streams.output_span(*(prefix + base for base in out_bases))
    if exact_base is not None and span["counts"][prefix + exact_base] != n_inputs:
        raise RuntimeError(f"{name} wrote {span['counts'][prefix + exact_base]} records to {exact_base}, "
                           f"expected {n_inputs} (log {log_path})")
    per_second = (n_inputs - 1) / span["seconds"] if span["seconds"] > 0 else 0.0
    stage_ceiling = ceiling_bench.lookup(streams.ceiling_result(), payload, eos)
    ceiling = adjacent["per_second"]
    return {"stage": name, "date": streams.now_iso(), "machine": streams.machine(), "broker": streams.broker().kind,
            "events": n_inputs, "partitions": streams.partitions(), "batch_size": streams.batch_size(),
            "exactly_once": eos, "input": ", ".join(base for base, _, _ in inputs),
            "output": ", ".join(out_bases), "output_records": {k[len(prefix):]: v for k, v in span["counts"].items()},
            "per_second": per_second, "output_span_seconds": span["seconds"],
            "ready_to_committed_seconds": done_at - ready_at, "ready_seconds": ready_seconds,
            "ceiling_per_second": ceiling, "ceiling_stage_per_second": stage_ceiling,
            "ratio_to_ceiling": per_second / ceiling if ceiling else None,
            "cpu_seconds_per_1000": 1000 * cpu / n_inputs, "peak_rss_mib": peak,
            "mean_output_bytes": span["mean_value_bytes"], "code_root": os.environ.get("BENCH_CODE_ROOT"),
            "profile": str(profile) if profile else None}


def table(r: dict[str, Any]) -> str:
    ratio = f"{r['ratio_to_ceiling']:.2f}" if r["ratio_to_ceiling"] else "n/a (run ceiling first)"
    ceiling = f"{r['ceiling_per_second']:,.0f}" if r["ceiling_per_second"] else "n/a"
    mode = "exactly-once" if r["exactly_once"] else "at-least-once"
    return "\n".join([
        f"{r['stage']} alone: {r['events']:,} pre-loaded events on {r['input']} → {r['output']}, {r['partitions']} "
        f"partitions, {mode}, broker {r['broker']} ({r['date']}, {r['machine']['cpu_count']} CPUs)",
        f"{'msg/s':>10}{'ceiling':>10}{'ratio':>8}{'CPU s/1k':>10}{'peak RSS MiB':>14}{'span s':>8}"
        f"{'ready→done s':>14}",
        f"{r['per_second']:>10,.0f}{ceiling:>10}{ratio:>8}{r['cpu_seconds_per_1000']:>10.3f}"
        f"{r['peak_rss_mib']:>14.0f}{r['output_span_seconds']:>8.1f}{r['ready_to_committed_seconds']:>14.1f}",
    ])
