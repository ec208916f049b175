"""python -m services.ingestion — wires config, the stream loop and the HTTP server."""

from __future__ import annotations

from services.common import topics
from services.common.config import ConfigError
from services.common.kafka import StreamLoop
from services.common.runtime import Runtime
from services.ingestion.config import IngestionConfig
from services.ingestion.handler import IngestionHandler


def main() -> int:
    rt = Runtime("ingestion", default_http_port=9101)
    try:
        config = IngestionConfig.from_env()
    except ConfigError as exc:
        rt.fail_config(exc)
    k = rt.settings.kafka
    handler = IngestionHandler(config, k.topic(topics.CONTACTS_NORMALIZED.name))
    loop = StreamLoop(rt.settings, [k.topic(topics.CONTACTS_INBOUND.name)], handler, rt.log,
                      dlq_topic=k.topic(topics.CONTACTS_DLQ.name))
    return rt.run_loop(loop)


if __name__ == "__main__":
    raise SystemExit(main())
