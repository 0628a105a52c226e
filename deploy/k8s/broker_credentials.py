"""Prints the broker credentials of a deployment as Secrets, for ``kubectl apply -f -``.

    python3 deploy/k8s/broker_credentials.py --namespace marketplace | kubectl apply -f -

Every process has its own RabbitMQ user, named as its Deployment, with only
the permissions ``base/rabbitmq-permissions.json`` gives it. This makes a
random password for each (and for ``admin``, the operators' user) and prints
one JSON ``List`` of:

- ``rabbitmq-users``: the users and their password hashes (``10-users.json``),
  which RabbitMQ imports at boot before the permissions (``20-permissions.json``);
- ``marketplace-amqp-<deployment>``: that Deployment's own ``amqp-uri``;
- ``rabbitmq-admin``: the administrator's ``username`` and ``password``.

Run it again to rotate every password; then restart RabbitMQ (it imports the
users at boot) and every Deployment (see deploy/k8s/README.md). Only the
standard library: an operator runs it anywhere.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import sys
from typing import Any

DEPLOYMENTS = (
    "gateway",
    "identity",
    "projects",
    "bidding",
    "contracts",
    "escrow",
    "messaging",
    "reputation",
    "relay",
)
"""Each Deployment that talks to RabbitMQ: its user's name and its Secret's suffix."""
ADMIN = "admin"
PER_DEPLOYMENT = "marketplace-amqp-"


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password)),
    with a random 4-byte salt."""
    salt = secrets.token_bytes(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def user(name: str, password: str, tags: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "password_hash": password_hash(password),
        "hashing_algorithm": "rabbit_password_hashing_sha256",
        "tags": tags,
    }


def secret(name: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "marketplace"},
        },
        "type": "Opaque",
        "stringData": data,
    }


def credentials(namespace: str, host: str, passwords: dict[str, str]) -> dict[str, Any]:
    """The Secrets for these passwords (one per Deployment, and ``admin``)."""
    users = [user(ADMIN, passwords[ADMIN], ["administrator"])]
    users += [user(name, passwords[name], []) for name in DEPLOYMENTS]
    items = [
        secret("rabbitmq-users", namespace, {"10-users.json": json.dumps({"users": users})}),
        secret("rabbitmq-admin", namespace, {"username": ADMIN, "password": passwords[ADMIN]}),
    ]
    items += [
        secret(
            PER_DEPLOYMENT + name,
            namespace,
            {"amqp-uri": f"amqp://{name}:{passwords[name]}@{host}:5672/"},
        )
        for name in DEPLOYMENTS
    ]
    return {"apiVersion": "v1", "kind": "List", "items": items}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", default="marketplace")
    parser.add_argument("--host", default="rabbitmq", help="the RabbitMQ Service's name")
    args = parser.parse_args(argv)
    passwords = {name: secrets.token_urlsafe(32) for name in (ADMIN, *DEPLOYMENTS)}
    json.dump(credentials(args.namespace, args.host, passwords), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
