"""`switchboard topics create|list`: the declared topics on KAFKA_BOOTSTRAP_SERVERS (the Helm hook
Job and the compose `topics` container run `topics create`)."""

from __future__ import annotations

import argparse

from services.cli.base import admin_client, err, kafka_settings, list_topics, positive_int, table

LOCAL_PARTITIONS = 3


def topic_partitions(local: bool) -> int | None:
    """SWITCHBOARD_TOPIC_PARTITIONS, else 3 on a local broker, else the declared counts."""
    from services.common.config import env_int

    value = env_int("SWITCHBOARD_TOPIC_PARTITIONS", 0, minimum=0, maximum=10_000)
    if value:
        return value
    return LOCAL_PARTITIONS if local else None


def _replication_factor(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError("must be -1 (broker default) or at least 1")
    return value


def cmd_topics_create(args: argparse.Namespace) -> int:
    from services.common.topics import ALL_TOPICS, provision

    settings = kafka_settings()
    partitions = args.partitions or topic_partitions(local=False)
    admin = admin_client(settings)
    list_topics(admin, settings)
    try:
        created = provision(admin, prefix=settings.topic_prefix, partitions=partitions,
                            replication_factor=args.replication_factor)
    except Exception as exc:
        err(f"creating topics failed: {exc}")
        return 1
    for name in created:
        print(f"created {name}")
    if not created:
        print(f"all {len(ALL_TOPICS)} declared topics already exist")
        return 0
    each = f"{partitions} partitions each" if partitions else "declared partition counts"
    print(f"{len(created)} created ({each}), {len(ALL_TOPICS) - len(created)} already existed")
    return 0


def cmd_topics_list(args: argparse.Namespace) -> int:
    from confluent_kafka.admin import ConfigResource, ResourceType

    from services.common.topics import ALL_TOPICS

    settings = kafka_settings()
    admin = admin_client(settings)
    md = list_topics(admin, settings)
    names = [settings.topic(t.name) for t in ALL_TOPICS]
    present = [n for n in names if n in md.topics]
    policies: dict[str, str] = {}
    if present:
        futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in present])
        for resource, future in futures.items():
            try:
                entry = future.result(timeout=10).get("cleanup.policy")
                policies[resource.name] = entry.value if entry is not None else "?"
            except Exception:
                policies[resource.name] = "?"
    rows = []
    missing = 0
    for topic, name in zip(ALL_TOPICS, names, strict=True):
        declared = "yes" if topic.compacted else "no"
        if name not in md.topics:
            missing += 1
            rows.append([name, "-", declared, "MISSING"])
            continue
        policy = policies.get(name, "?")
        compacted = "?" if policy == "?" else ("yes" if "compact" in policy else "no")
        status = "ok" if compacted in ("?", declared) else f"declared compacted={declared}"
        rows.append([name, str(len(md.topics[name].partitions)), compacted, status])
    table(["TOPIC", "PARTITIONS", "COMPACTED", "STATUS"], rows)
    if missing:
        print(f"{missing} declared topic(s) missing: run `switchboard topics create`")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("topics", help="create or list the declared topics on KAFKA_BOOTSTRAP_SERVERS")
    tsub = p.add_subparsers(dest="topics_command", metavar="ACTION", required=True)
    tc = tsub.add_parser("create", help="create every declared topic that does not exist")
    tc.add_argument("--partitions", type=positive_int,
                    help="one partition count for every topic (default: $SWITCHBOARD_TOPIC_PARTITIONS or "
                         "the declared counts)")
    tc.add_argument("--replication-factor", type=_replication_factor, default=1, metavar="N",
                    help="replicas per partition (default 1; 3 on a production cluster; -1 = the broker's "
                         "default.replication.factor). min.insync.replicas becomes 2 from 3 replicas on")
    tc.set_defaults(func=cmd_topics_create)
    tl = tsub.add_parser("list", help="the declared topics: partitions, compaction, missing ones")
    tl.set_defaults(func=cmd_topics_list)
