"""``marketplace-service NAME``: runs one service (or the gateway) as a Nameko process.

Nameko's configuration is built here from :mod:`shared.config`, so every
process is configured by the same environment variables.
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()  # before anything opens a socket

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

from shared.config import Settings, settings  # noqa: E402
from shared.logging import configure_logging, get_logger, redact_uri  # noqa: E402
from shared.probes import reachable_amqp  # noqa: E402
from shared.schemas import load_all_event_schemas  # noqa: E402
from shared.sql import name_connections  # noqa: E402

SERVICES = {
    "identity": "services.identity.service:IdentityService",
    "projects": "services.projects.service:ProjectsService",
    "bidding": "services.bidding.service:BiddingService",
    "contracts": "services.contracts.service:ContractsService",
    "escrow": "services.escrow.service:EscrowService",
    "messaging": "services.messaging.service:MessagingService",
    "reputation": "services.reputation.service:ReputationService",
    "gateway": "gateway.service:GatewayService",
}


def nameko_config(name: str, cfg: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "AMQP_URI": cfg.amqp_uri,
        "EVENT_STORE_URL": cfg.event_store_url,
        "DATABASE_URL": cfg.database_url(name),
        "CONSUMER_MAX_RETRIES": cfg.consumer_max_retries,
        "CONSUMER_RETRY_DELAY_MS": cfg.consumer_retry_delay_ms,
        "RPC_TIMEOUT": cfg.rpc_timeout,
        "HEALTH_ADDRESS": cfg.health_address,
        "serializer": "json",
        "max_workers": 10,
    }
    if name == "gateway":
        config["WEB_SERVER_ADDRESS"] = f"{cfg.gateway_host}:{cfg.gateway_port}"
        config["GATEWAY_INTERNAL_ADDRESS"] = cfg.gateway_internal_address
    return config


def load_service(name: str) -> type:
    module, _, attr = SERVICES[name].partition(":")
    service: type = getattr(importlib.import_module(module), attr)
    return service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=sorted(SERVICES))
    args = parser.parse_args(argv)
    cfg = settings()
    configure_logging(args.service)
    name_connections(args.service)
    log = get_logger("runner")
    reason = reachable_amqp(cfg.amqp_uri)
    if reason:
        log.error(
            "RabbitMQ is not reachable",
            amqp_uri=redact_uri(cfg.amqp_uri),
            error=reason,
            hint="start it with 'rabbitmq-server -detached' (or set AMQP_URI)",
        )
        return 1
    load_all_event_schemas()
    service_cls = load_service(args.service)
    config = nameko_config(args.service, cfg)
    if args.service == "gateway":
        log.info(
            "gateway listening",
            url=cfg.gateway_url,
            internal=f"http://{cfg.gateway_internal_address} (/metrics, /health/services)",
        )
    from nameko.cli.run import run

    # What import made (about 100,000 objects in the gateway: modules, schemas,
    # tables) lives as long as the process. Frozen, it is left out of the
    # collector's full passes, which otherwise paused every request in flight
    # for tens of milliseconds now and then (the gateway's p99).
    gc.collect()
    gc.freeze()
    run([service_cls], config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
