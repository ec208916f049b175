"""faust-streaming's exactly_once against our bare confluent-kafka transactional loop (decision 0005)

Both sides run the same job as a child process: read keyed records from an input topic, look the
key up in a table and update it (a per-key count), write one output record per input (the input's
id and the count). faust-streaming runs it as an agent with `processing_guarantee="exactly_once"`
and a faust Table (changelog topic, in memory store), in a venv of its own under
`.cache/faust-venv` (python3.11, faust-streaming and aiokafka pinned below), built on first use.
The bare loop is the shape of `services/common/transactions.py`: consume a batch, produce the
outputs and the table's changelog records, `send_offsets_to_transaction`, commit; on start it fences
the previous producer (`init_transactions`) and reloads the table from its changelog.

Per side:

1. a clean run (no kill): N input records produced up front, the time from the first to the N-th
   distinct committed output gives msg/s (startup excluded);
2. the duplicate test: N fresh input records, the worker SIGKILLed (process group) `--kills` times,
   when 1/4, 2/4, 3/4 of the inputs have a committed output, and restarted at once; then left to
   finish. The output topic is read with isolation.level=read_committed: duplicates (an input id
   seen more than once), missing ids, and keys whose last count differs from their number of inputs
   (table state not exactly-once).

Prints a table and writes bench/results/faust-eos.json. Not part of `make test` or `make bench`:

    python -m bench.faust_eos [--n 20000] [--kills 3] [--only faust|bare]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import confluent_kafka
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parents[1]
FAUST_VENV = REPO / ".cache" / "faust-venv"
FAUST_PINS = ["faust-streaming==0.15.3", "aiokafka==0.14.0", "mode-streaming==0.7.1"]
PARTITIONS = 4
KEYS = 1000
SESSION_TIMEOUT_S = 10  # both sides: a killed member leaves the group this long after the kill
STALL_S = 120.0  # no new committed output for this long ends a phase

FAUST_APP = '''
import os
import faust

app = faust.App(
    os.environ["EOS_APP_ID"],
    broker="kafka://" + os.environ["EOS_BOOTSTRAP"],
    processing_guarantee="exactly_once",
    store="memory://",
    topic_partitions=__PARTITIONS__,
    topic_replication_factor=1,
    broker_session_timeout=__SESSION__,
    broker_heartbeat_interval=3,
    consumer_auto_offset_reset="earliest",
    web_enabled=False,
)
source = app.topic(os.environ["EOS_IN"], key_type=bytes, value_type=bytes,
                   key_serializer="raw", value_serializer="raw", partitions=__PARTITIONS__)
sink = app.topic(os.environ["EOS_OUT"], key_type=bytes, value_type=bytes,
                 key_serializer="raw", value_serializer="raw", partitions=__PARTITIONS__)
counts = app.Table("counts", default=int, partitions=__PARTITIONS__, key_type=bytes, value_type=int)


@app.agent(source)
async def process(stream):
    async for event in stream.events():
        key = event.key
        counts[key] += 1  # the lookup and update, in the table's changelog
        await sink.send(key=key, value=event.value + b"|" + str(counts[key]).encode())


if __name__ == "__main__":
    app.main()
'''.replace("__PARTITIONS__", str(PARTITIONS)).replace("__SESSION__", str(SESSION_TIMEOUT_S))


# ---------------------------------------------------------------------------------------------
# the bare loop (a child process of the repo's venv: python -m bench.faust_eos --bare-worker ...)

def bare_worker(bootstrap: str, app_id: str, topic_in: str, topic_out: str) -> None:
    changelog = f"{app_id}-counts-changelog"
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"{app_id}-txn",
                         "linger.ms": 5, "transaction.timeout.ms": 60_000})
    producer.init_transactions(30)  # fences the killed instance and aborts its open transaction
    counts: dict[bytes, int] = {}
    restore = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{app_id}-restore",
                        "isolation.level": "read_committed", "enable.auto.commit": False})
    tps = [TopicPartition(changelog, p, confluent_kafka.OFFSET_BEGINNING) for p in range(PARTITIONS)]
    ends = {p: restore.get_watermark_offsets(TopicPartition(changelog, p), timeout=30, cached=False)[1]
            for p in range(PARTITIONS)}
    restore.assign(tps)
    pending = {p for p, end in ends.items() if end > 0}
    while pending:
        for m in restore.consume(1000, 1.0):
            if m.error():
                continue
            counts[m.key()] = int(m.value())
            if m.offset() + 1 >= ends[m.partition()]:
                pending.discard(m.partition())
        for p in list(pending):  # transaction markers take offsets: the position can pass the last record
            pos = restore.position([TopicPartition(changelog, p)])[0].offset
            if pos >= ends[p]:
                pending.discard(p)
    restore.close()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": app_id, "enable.auto.commit": False,
                         "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                         "session.timeout.ms": SESSION_TIMEOUT_S * 1000, "heartbeat.interval.ms": 3000})
    consumer.subscribe([topic_in])
    while True:
        msgs = [m for m in consumer.consume(500, 0.5) if not m.error()]
        if not msgs:
            continue
        producer.begin_transaction()
        offsets: dict[tuple[str, int], int] = {}
        for m in msgs:
            key = m.key()
            counts[key] = counts.get(key, 0) + 1
            producer.produce(topic_out, key=key, value=m.value() + b"|" + str(counts[key]).encode(),
                             partition=m.partition())
            producer.produce(changelog, key=key, value=str(counts[key]).encode(), partition=m.partition())
            offsets[(m.topic(), m.partition())] = m.offset() + 1
        producer.send_offsets_to_transaction([TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                                             consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)


# ---------------------------------------------------------------------------------------------
# the harness

def faust_python(log: Any = print) -> Path:
    python = FAUST_VENV / "bin" / "python"
    marker = FAUST_VENV / ".pins"
    if not python.exists() or not marker.exists() or marker.read_text() != " ".join(FAUST_PINS):
        log(f"faust venv: creating {FAUST_VENV} ({' '.join(FAUST_PINS)})")
        subprocess.run(["python3.11", "-m", "venv", "--clear", str(FAUST_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *FAUST_PINS], check=True)
        marker.write_text(" ".join(FAUST_PINS))
    return python


def faust_versions(python: Path) -> dict[str, str]:
    out = subprocess.run([str(python), "-c", "import importlib.metadata as m, json, sys; print(json.dumps("
                          "{p: m.version(p) for p in ('faust-streaming', 'aiokafka', 'mode-streaming')}"
                          " | {'python': sys.version.split()[0]}))"],
                         capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


class Monitor(threading.Thread):
    """Reads the output topic from the beginning, read_committed, for the whole phase."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"mon-{uuid.uuid4().hex[:8]}",
                                  "isolation.level": "read_committed", "enable.auto.commit": False})
        self.consumer.assign([TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in range(PARTITIONS)])
        self.ids: collections.Counter[int] = collections.Counter()
        self.last_count: dict[bytes, int] = {}
        self.first_at: float | None = None
        self.nth_at: dict[int, float] = {}  # distinct count -> monotonic time it was reached
        self.last_new_at = time.monotonic()
        self.total = 0
        self._done = threading.Event()

    def distinct(self) -> int:
        return len(self.ids)

    def run(self) -> None:
        while not self._done.is_set():
            for m in self.consumer.consume(1000, 0.2):
                if m.error():
                    continue
                ident, count = m.value().split(b"|")
                i = int(ident)
                now = time.monotonic()
                if self.first_at is None:
                    self.first_at = now
                self.total += 1
                if i not in self.ids:
                    self.last_new_at = now
                    self.nth_at[len(self.ids) + 1] = now
                self.ids[i] += 1
                self.last_count[m.key()] = max(self.last_count.get(m.key(), 0), int(count))
        self.consumer.close()

    def drain(self, quiet: float = 5.0) -> None:
        """Stop once nothing new was read for `quiet` seconds."""
        seen = -1
        while seen != self.total:
            seen = self.total
            time.sleep(quiet)
        self._done.set()
        self.join(30)


def produce_inputs(bootstrap: str, topic: str, n: int) -> dict[bytes, int]:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "partitioner": "murmur2_random"})
    per_key: dict[bytes, int] = collections.Counter()
    for i in range(n):
        key = f"k{i % KEYS}".encode()
        per_key[key] += 1
        while True:
            try:
                producer.produce(topic, key=key, value=str(i).encode())
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush(60)
    return dict(per_key)


def start_worker(side: str, bootstrap: str, app_id: str, topic_in: str, topic_out: str,
                 workdir: Path, fpython: Path | None) -> subprocess.Popen[bytes]:
    env = os.environ | {"EOS_BOOTSTRAP": bootstrap, "EOS_APP_ID": app_id, "EOS_IN": topic_in, "EOS_OUT": topic_out}
    log = open(workdir / f"{app_id}.log", "ab")  # noqa: SIM115 - the child keeps it
    if side == "faust":
        assert fpython is not None
        app = workdir / "faust_eos_app.py"
        app.write_text(FAUST_APP)
        cmd = [str(fpython), str(app), "worker", "-l", "warn", "--without-web"]
        cwd = workdir
    else:
        cmd = [sys.executable, "-m", "bench.faust_eos", "--bare-worker", bootstrap, app_id, topic_in, topic_out]
        cwd = REPO
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(30)


def run_phase(side: str, bootstrap: str, n: int, kills: int, workdir: Path, fpython: Path | None,
              log: Any = print) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    app_id, topic_in, topic_out = f"eos-{side}-{run}", f"eos-in-{run}", f"eos-out-{run}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [NewTopic(t, PARTITIONS, 1) for t in (topic_in, topic_out)]
    if side == "bare":  # faust declares its own changelog topic
        topics.append(NewTopic(f"{app_id}-counts-changelog", PARTITIONS, 1, config={"cleanup.policy": "compact"}))
    for f in admin.create_topics(topics).values():
        f.result(30)
    per_key = produce_inputs(bootstrap, topic_in, n)
    monitor = Monitor(bootstrap, topic_out)
    monitor.start()
    started = time.monotonic()
    proc = start_worker(side, bootstrap, app_id, topic_in, topic_out, workdir, fpython)
    kill_at: list[dict[str, Any]] = []
    try:
        for k in range(1, kills + 1):
            target = n * k // (kills + 1)
            while monitor.distinct() < target and time.monotonic() - monitor.last_new_at < STALL_S:
                if proc.poll() is not None:
                    raise RuntimeError(f"{side} worker exited with {proc.returncode} (log {workdir / app_id}.log)")
                time.sleep(0.05)
            kill_at.append({"committed_distinct": monitor.distinct(), "seconds": round(time.monotonic() - started, 1)})
            kill(proc)
            log(f"{side}: SIGKILL {k} at {monitor.distinct()} of {n} committed")
            proc = start_worker(side, bootstrap, app_id, topic_in, topic_out, workdir, fpython)
        monitor.last_new_at = time.monotonic()
        while monitor.distinct() < n and time.monotonic() - monitor.last_new_at < STALL_S:
            if proc.poll() is not None:
                raise RuntimeError(f"{side} worker exited with {proc.returncode} (log {workdir / app_id}.log)")
            time.sleep(0.2)
        finished = time.monotonic()
    except BaseException:
        monitor.drain(quiet=0.5)
        raise
    finally:
        kill(proc)
    monitor.drain()
    duplicates = sum(c - 1 for c in monitor.ids.values() if c > 1)
    result: dict[str, Any] = {
        "side": side, "n": n, "kills": kills, "kill_at": kill_at,
        "outputs_read_committed": monitor.total, "distinct": monitor.distinct(),
        "duplicates": duplicates, "missing": n - len(set(monitor.ids) & set(range(n))),
        "table_keys_wrong": sum(1 for key, c in per_key.items() if monitor.last_count.get(key) != c),
        "seconds_to_done": round(finished - started, 1),
    }
    if kills == 0 and monitor.first_at is not None and n in monitor.nth_at:
        result["msg_per_s"] = round((n - 1) / max(monitor.nth_at[n] - monitor.first_at, 1e-6))
        result["startup_s"] = round(monitor.first_at - started, 1)
    log(json.dumps(result))
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-worker":
        bare_worker(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="input records per run")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--only", choices=("faust", "bare"), action="append")
    parser.add_argument("--no-throughput", action="store_true", help="skip the clean (no kill) runs")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from switchboard_dev import broker

    sides = args.only or ["faust", "bare"]
    fpython = faust_python() if "faust" in sides else None
    handle = broker.ensure_broker()
    workdir = Path(tempfile.mkdtemp(prefix="faust-eos-"))
    print(f"worker logs in {workdir}")
    runs: list[dict[str, Any]] = []
    try:
        if not handle.supports_transactions:
            raise SystemExit(f"{handle.kind} does not support transactions: nothing to measure")
        for side in sides:
            if not args.no_throughput:
                runs.append(run_phase(side, handle.bootstrap, args.n, 0, workdir, fpython))
            runs.append(run_phase(side, handle.bootstrap, args.n, args.kills, workdir, fpython))
    finally:
        handle.cleanup()
    versions = {"confluent-kafka": confluent_kafka.__version__, "librdkafka": confluent_kafka.libversion()[0],
                "python": sys.version.split()[0]}
    if fpython is not None:
        versions["faust"] = faust_versions(fpython)
    out = REPO / "bench" / "results" / "faust-eos.json"
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "broker": handle.kind, "versions": versions,
        "n": args.n, "kills": args.kills, "partitions": PARTITIONS, "keys": KEYS,
        "session_timeout_s": SESSION_TIMEOUT_S, "machine": f"{os.cpu_count()} cores",
        "load_average_at_end": [round(x, 1) for x in os.getloadavg()], "runs": runs}, indent=1) + "\n")
    print(f"\n{'side':6} {'kills':>5} {'outputs':>8} {'dupes':>6} {'missing':>7} {'keys wrong':>10} {'msg/s':>7}")
    for r in runs:
        print(f"{r['side']:6} {r['kills']:>5} {r['outputs_read_committed']:>8} {r['duplicates']:>6} "
              f"{r['missing']:>7} {r['table_keys_wrong']:>10} {r.get('msg_per_s', ''):>7}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
