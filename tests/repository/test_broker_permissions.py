"""Least privilege on the broker, as the Kubernetes manifests declare it (issue 17).

Every Deployment reaches RabbitMQ as its own user, with its own Secret; what
each user may do is ``deploy/k8s/base/rabbitmq-permissions.json``. These tests
read the manifests and that file (no cluster, no kubectl) and hold them
against the code: what Nameko and ``shared.consumer`` declare, bind, consume
and publish for each process (from its entrypoints and RPC proxies) must be
allowed, and nothing else that matters: only the relay writes to the
``<service>.events`` exchanges, the gateway reads no event queue, and a
service calls no other service's RPC.

RabbitMQ matches a permission's regular expression anywhere in a resource's
name (``re:run`` without anchors): ``re.search`` here, never ``re.match``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc, RpcProxy

from shared.runner import SERVICES, load_service

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
PERMISSIONS = K8S / "base" / "rabbitmq-permissions.json"
RPC_EXCHANGE = "nameko-rpc"  # nameko's default; the runner does not change it
DEFAULT_EXCHANGE = "amq.default"  # how permissions name the "" exchange


def broker_credentials() -> ModuleType:
    """``deploy/k8s/broker_credentials.py``, the operators' script (not a package)."""
    spec = importlib.util.spec_from_file_location(
        "broker_credentials", K8S / "broker_credentials.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- what the code needs ------------------------------------------------------------


@dataclass
class Needs:
    """The broker resources a process touches, by permission (RabbitMQ's table:
    declare = configure; bind = write on the queue, read on the exchange;
    consume = read; publish = write on the exchange; a queue declared with a
    dead-letter exchange = write on that exchange and read on the queue)."""

    configure: set[str] = field(default_factory=set)
    write: set[str] = field(default_factory=set)
    read: set[str] = field(default_factory=set)
    topic_write: set[str] = field(default_factory=set)
    """Routing keys published to the RPC exchange."""
    topic_read: set[str] = field(default_factory=set)
    """Binding keys on the RPC exchange."""
    event_queues: set[str] = field(default_factory=set)


def entrypoints(cls: type) -> list[tuple[str, Any]]:
    """(method name, entrypoint) of a service class, as Nameko will bind them."""
    found = []
    for attr in dir(cls):
        found += [(attr, ep) for ep in getattr(getattr(cls, attr), "nameko_entrypoints", ())]
    return found


def rpc_proxies(cls: type) -> set[str]:
    deps = (getattr(cls, attr) for attr in dir(cls))
    return {
        d.target_service
        for d in deps
        if isinstance(d, DependencyProvider) and isinstance(d, RpcProxy)
    }


def rpc_methods(name: str) -> set[str]:
    return {method for method, ep in entrypoints(load_service(name)) if isinstance(ep, Rpc)}


def needs_of(name: str) -> Needs:
    cls = load_service(name)
    needs = Needs()
    reply_key = str(uuid.uuid4())
    if any(isinstance(ep, Rpc) for _, ep in entrypoints(cls)):
        queue = f"rpc-{name}"
        needs.configure |= {RPC_EXCHANGE, queue}
        needs.write |= {queue, RPC_EXCHANGE}  # bind; publish replies
        needs.read |= {RPC_EXCHANGE, queue}
        needs.topic_read.add(f"{name}.*")
        needs.topic_write.add(reply_key)  # a reply goes to the caller's reply_to
    for target in rpc_proxies(cls):
        reply_queue = f"rpc.reply-{name}-{reply_key}"
        needs.configure |= {RPC_EXCHANGE, reply_queue}
        needs.write |= {reply_queue, RPC_EXCHANGE}  # bind; publish requests
        needs.read |= {RPC_EXCHANGE, reply_queue}
        needs.topic_read.add(reply_key)
        needs.topic_write |= {f"{target}.{method}" for method in rpc_methods(target)}
    for method, ep in entrypoints(cls):
        if not isinstance(ep, EventHandler):
            continue
        exchange = f"{ep.source_service}.events"
        queue = f"evt-{ep.source_service}-{ep.event_type}--{name}.{method}"
        needs.event_queues.add(queue)
        parking = f"{name}.parking"
        delay, dead = f"{queue}.delay", f"{queue}.dead"
        needs.configure |= {exchange, queue, parking, delay, dead}
        needs.write |= {queue, delay, dead, parking}  # bind them to parking; park; dead-letter
        needs.read |= {exchange, queue, parking, delay}
    return needs


def relay_needs() -> Needs:
    exchanges = {f"{name}.events" for name in SERVICES if name != "gateway"}
    return Needs(configure=set(exchanges), write=set(exchanges))


NEEDS = {**{name: needs_of(name) for name in SERVICES}, "relay": relay_needs()}
ALL_EVENT_QUEUES = set().union(*(n.event_queues for n in NEEDS.values()))
EVENT_EXCHANGES = {f"{name}.events" for name in SERVICES if name != "gateway"}


# -- what the manifests allow -------------------------------------------------------


def definitions() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(PERMISSIONS.read_text())
    return loaded


def permissions_of(user: str) -> dict[str, str]:
    (found,) = [p for p in definitions()["permissions"] if p["user"] == user]
    assert found["vhost"] == "/"
    return found


def topic_permissions_of(user: str, exchange: str) -> dict[str, str] | None:
    found = [
        t
        for t in definitions()["topic_permissions"]
        if t["user"] == user and t["exchange"] == exchange
    ]
    assert len(found) <= 1
    return found[0] if found else None


def allows(user: str, kind: str, resource: str) -> bool:
    return re.search(permissions_of(user)[kind], resource) is not None


def allows_topic(user: str, kind: str, exchange: str, key: str) -> bool:
    topic = topic_permissions_of(user, exchange)
    return topic is None or re.search(topic[kind], key) is not None


def workloads() -> list[dict[str, Any]]:
    found = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") in ("Deployment", "StatefulSet", "Job"):
                found.append(doc)
    return found


def amqp_secret(workload: dict[str, Any]) -> dict[str, str] | None:
    for container in workload["spec"]["template"]["spec"]["containers"]:
        for env in container.get("env", []):
            if env["name"] == "AMQP_URI":
                assert "value" not in env, "a broker credential must come from a Secret"
                ref: dict[str, str] = env["valueFrom"]["secretKeyRef"]
                return ref
    return None


# -- the tests ------------------------------------------------------------------------


def test_every_deployment_has_its_own_broker_user_and_secret():
    credentials = broker_credentials()
    users = {p["user"] for p in definitions()["permissions"]}
    with_amqp = {w["metadata"]["name"]: amqp_secret(w) for w in workloads() if amqp_secret(w)}
    assert set(with_amqp) == set(credentials.DEPLOYMENTS) == set(NEEDS)
    assert users == {*credentials.DEPLOYMENTS, credentials.ADMIN}
    for name, ref in with_amqp.items():
        assert ref == {"name": f"marketplace-amqp-{name}", "key": "amqp-uri"}, name
    secrets = [ref["name"] for ref in with_amqp.values()]
    assert len(set(secrets)) == len(secrets)
    # the Jobs (migration, rebuild) never reach the broker
    assert all(w["kind"] != "Job" for w in workloads() if amqp_secret(w))


def test_only_the_relay_may_write_to_the_event_exchanges():
    for user in [*SERVICES, "admin"]:
        for exchange in EVENT_EXCHANGES:
            if user != "admin":
                assert not allows(user, "write", exchange), f"{user} may publish to {exchange}"
    for exchange in EVENT_EXCHANGES:
        assert allows("relay", "write", exchange)
    assert permissions_of("relay")["read"] == "^$", "the relay reads nothing"


def test_the_gateway_cannot_read_or_bind_to_events():
    assert ALL_EVENT_QUEUES, "no event queue found in the services"
    for queue in {*ALL_EVENT_QUEUES, "evt-contracts-MilestoneApproved--escrow.anything"}:
        for kind in ("read", "configure", "write"):
            assert not allows("gateway", kind, queue), f"gateway may {kind} {queue}"
    for exchange in EVENT_EXCHANGES:
        assert not allows("gateway", "read", exchange), f"gateway may bind to {exchange}"


def test_each_user_may_do_what_its_code_needs():
    for user, needs in NEEDS.items():
        for kind in ("configure", "write", "read"):
            for resource in getattr(needs, kind):
                assert allows(user, kind, resource), f"{user} needs {kind} on {resource}"
        for key in needs.topic_write:
            assert allows_topic(user, "write", RPC_EXCHANGE, key), f"{user} publishes {key}"
        for key in needs.topic_read:
            assert allows_topic(user, "read", RPC_EXCHANGE, key), f"{user} binds {key}"


def test_no_service_touches_another_services_queues_or_calls_its_rpc():
    for user in SERVICES:
        # The default exchange routes to any queue by name; parking is per service.
        assert not allows(user, "write", DEFAULT_EXCHANGE), user
        others = [other for other in NEEDS if other != user]
        for other in others:
            assert not allows(user, "write", f"{other}.parking"), f"{user} parks in {other}'s"
            theirs = NEEDS[other].event_queues | {f"rpc-{other}"}
            theirs |= {f"{q}.delay" for q in NEEDS[other].event_queues}
            for queue in theirs:
                for kind in ("configure", "read", "write"):
                    assert not allows(user, kind, queue), f"{user} may {kind} {queue}"
            assert not allows(user, "configure", f"rpc.reply-{other}-{uuid.uuid4()}")
        if rpc_proxies(load_service(user)):
            continue
        for target in SERVICES:
            for method in rpc_methods(target) if target != "gateway" else ():
                key = f"{target}.{method}"
                assert not allows_topic(user, "write", RPC_EXCHANGE, key), f"{user} calls {key}"
                assert not allows_topic(user, "read", RPC_EXCHANGE, key) or target == user


def test_the_credentials_script_makes_hashes_rabbitmq_accepts_and_one_uri_each():
    credentials = broker_credentials()
    passwords = {name: f"pw-{name}" for name in (credentials.ADMIN, *credentials.DEPLOYMENTS)}
    made = credentials.credentials("marketplace", "rabbitmq", passwords)
    secrets = {item["metadata"]["name"]: item["stringData"] for item in made["items"]}
    users = {u["name"]: u for u in json.loads(secrets["rabbitmq-users"]["10-users.json"])["users"]}
    assert users["admin"]["tags"] == ["administrator"]
    for name in credentials.DEPLOYMENTS:
        uri = urlsplit(secrets[f"marketplace-amqp-{name}"]["amqp-uri"])
        assert (uri.username, uri.password, uri.hostname, uri.path) == (
            name,
            passwords[name],
            "rabbitmq",
            "/",
        )
        assert users[name]["tags"] == []
        assert users[name]["hashing_algorithm"] == "rabbit_password_hashing_sha256"
        raw = base64.b64decode(users[name]["password_hash"])
        salt, digest = raw[:4], raw[4:]
        assert digest == hashlib.sha256(salt + passwords[name].encode()).digest()


@pytest.mark.parametrize("overlay", ["dev/backends.yaml", "prod/rabbitmq.yaml"])
def test_rabbitmq_imports_the_users_then_the_permissions_and_creates_no_default_user(
    overlay: str,
):
    docs = list(yaml.safe_load_all((K8S / "overlays" / overlay).read_text()))
    (config,) = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "rabbitmq-config"
    ]
    conf = config["data"]["rabbitmq.conf"]
    assert "definitions.import_backend = local_filesystem" in conf
    assert "definitions.local.path = /etc/rabbitmq/definitions" in conf
    assert "loopback_users" not in conf, "guest must not log in from elsewhere"
    (broker,) = [
        d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "rabbitmq"
    ]
    pod = broker["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    users = mounts["/etc/rabbitmq/definitions/10-users.json"]
    from_secret = volumes[users["name"]]["secret"]["secretName"]  # pragma: allowlist secret
    assert from_secret == "rabbitmq-users"  # pragma: allowlist secret
    permissions = mounts["/etc/rabbitmq/definitions/20-permissions.json"]
    assert volumes[permissions["name"]]["configMap"]["name"] == "rabbitmq-permissions"
    env = {e["name"] for e in container["env"]}
    assert not env & {"RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS"}
