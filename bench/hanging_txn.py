"""Does a broker SIGKILL leave transactions hanging? (KAFKA-20734, RELIABILITY.md finding 11)

Several transactional producers commit small transactions back to back (one record, one
TxnOffsetCommit each, as every Switchboard hop does) while the local one-node broker is killed
(SIGKILL) and started again on the same data. Transactions caught in PrepareCommit at the kill are
completed by the restarted coordinator. Kafka 4.3.x and 4.4.0 skip the transaction markers of
partitions whose leader is not known yet, as if the partitions had been deleted (their
`KRaftMetadataCache.getPartitionLeaderEndpoint` returns empty where the Scala cache of 4.2 returned
`Node.noNode`), and still write CompleteCommit: the transaction then hangs in its data partitions
(the last stable offset never moves, read_committed consumers stop there) and in
`__consumer_offsets` (the group's offsets read UNSTABLE_OFFSET_COMMIT for ever, its consumers
never start).

After the restart the producers are gone; the script waits past the transaction timeout (so any
transaction merely left open is aborted by the coordinator) and counts, per group, offsets that
cannot be read stably and, per data partition, a last stable offset behind the high watermark.

    python -m bench.hanging_txn --kafka 4.3.1 --kafka 4.2.2 --runs 3
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from switchboard_dev import broker

TXN_TIMEOUT_MS = 10_000
PRODUCERS = 32
PARTITIONS = 4


def _producer_loop(bootstrap: str, i: int, counts: Any) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"hang-{i}",
                         "transaction.timeout.ms": TXN_TIMEOUT_MS, "linger.ms": 0,
                         "message.timeout.ms": 5000, "socket.timeout.ms": 3000, "retry.backoff.ms": 10})
    meta = Consumer({"bootstrap.servers": bootstrap, "group.id": f"hang-group-{i}"}).consumer_group_metadata()
    producer.init_transactions(30)
    offset = 0
    while True:
        try:
            producer.begin_transaction()
            producer.produce("hang-out", key=f"{i}-{offset}".encode(), value=b"x", partition=offset % PARTITIONS)
            offset += 1
            producer.send_offsets_to_transaction([TopicPartition("hang-in", i % PARTITIONS, offset)], meta, 5)
            producer.commit_transaction(5)
            counts[i] += 1
        except KafkaException:
            return  # the broker went away: leave whatever is in flight as it is


def _producers(bootstrap: str, counts: Any) -> None:
    """In a child process, killed with the broker: nothing of ours is sent after the restart (a
    call blocked past its timeout could otherwise deliver a late request, librdkafka#5456)."""
    threads = [threading.Thread(target=_producer_loop, args=(bootstrap, i, counts), daemon=True)
               for i in range(PRODUCERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _stuck_groups(bootstrap: str) -> list[str]:
    stuck = []
    for i in range(PRODUCERS):
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"hang-group-{i}",
                             "isolation.level": "read_committed", "enable.auto.commit": False})
        try:
            consumer.committed([TopicPartition("hang-in", i % PARTITIONS)], timeout=10)
        except KafkaException as exc:  # UNSTABLE_OFFSET_COMMIT retried until the timeout
            stuck.append(f"hang-group-{i}: {exc.args[0].name()}")
        finally:
            consumer.close()
    return stuck


def _stuck_partitions(bootstrap: str) -> list[str]:
    """Partitions whose read_committed end (last stable offset) is behind the high watermark."""
    committed = Consumer({"bootstrap.servers": bootstrap, "group.id": "hang-check",
                          "isolation.level": "read_committed"})
    uncommitted = Consumer({"bootstrap.servers": bootstrap, "group.id": "hang-check",
                            "isolation.level": "read_uncommitted"})
    stuck = []
    try:
        for p in range(PARTITIONS):
            tp = TopicPartition("hang-out", p)
            _, lso = committed.get_watermark_offsets(tp, timeout=10, cached=False)
            _, hw = uncommitted.get_watermark_offsets(tp, timeout=10, cached=False)
            if lso < hw:
                stuck.append(f"hang-out[{p}]: last stable offset {lso}, high watermark {hw}")
    finally:
        committed.close()
        uncommitted.close()
    return stuck


def run_once(version: str, log: Any = print, keep: bool = False) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix=f"hang-{version}-"))
    handle: broker.BrokerHandle | None = broker.start_local_kafka(data_dir=data, log=log, version=version)
    try:
        assert handle is not None
        admin = AdminClient({"bootstrap.servers": handle.bootstrap})
        for f in admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in ("hang-in", "hang-out")]).values():
            f.result(30)
        ctx = multiprocessing.get_context("spawn")
        counts = ctx.Array("i", PRODUCERS)
        child = ctx.Process(target=_producers, args=(handle.bootstrap, counts))
        child.start()
        time.sleep(6.0)
        handle.stop(kill=True)
        child.kill()
        child.join()
        handle = broker.start_local_kafka(data_dir=data, log=log, version=version)
        time.sleep(TXN_TIMEOUT_MS / 1000 + 15)  # open transactions are aborted by now
        committed = sum(counts[i] for i in range(PRODUCERS))
        result: dict[str, Any] = {"kafka": version, "transactions": committed,
                                  "stuck_groups": _stuck_groups(handle.bootstrap),
                                  "stuck_partitions": _stuck_partitions(handle.bootstrap)}
        log(json.dumps(result))
        if keep:  # left running for a look (the runbook's kafka-transactions commands were tried so)
            result["bootstrap"], result["data_dir"] = handle.bootstrap, str(data)
            handle = None
        return result
    finally:
        if handle is not None:
            handle.stop(kill=True)
            shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kafka", action="append", help="broker version (repeatable)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = [run_once(v) for _ in range(args.runs) for v in (args.kafka or [broker.KAFKA_VERSION])]
    out = Path(__file__).parent / "results" / "hanging-txn.json"
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "producers": PRODUCERS,
                               "runs": results}, indent=1) + "\n")
    for version in dict.fromkeys(r["kafka"] for r in results):
        mine = [r for r in results if r["kafka"] == version]
        hung = sum(1 for r in mine if r["stuck_groups"] or r["stuck_partitions"])
        print(f"Kafka {version}: {hung} of {len(mine)} restarts left a transaction hanging "
              f"(groups {sum(len(r['stuck_groups']) for r in mine)}, partitions "
              f"{sum(len(r['stuck_partitions']) for r in mine)})")


if __name__ == "__main__":
    main()
