"""Nothing trusts what it cannot verify: a message put on the broker by anyone
but the gateway (an RPC) or the relay (an event) speaks for nobody and moves
no money."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pika
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kombu import Connection
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from shared.actor_assertion import ASSERTION, Actor, sign_assertion
from shared.consumer import ERROR_HEADER
from shared.errors import Forbidden, NotFound
from shared.eventstore import EventMetadata, RecordedEvent
from shared.relay import AmqpPublisher
from shared.schemas import registry
from shared.signing import Signer, signer
from tests.integration.helpers import wait_until
from tests.integration.test_contracts_api import Deal, deal  # noqa: F401  (a fixture)

pytestmark = pytest.mark.integration

ESCROW_QUEUE = "evt-contracts-MilestoneApproved--escrow.on_milestone_approved"
STRANGER = Signer(Ed25519PrivateKey.generate())


def call_resolve(amqp_uri: str, context: dict[str, str]) -> Any:
    """``contracts.resolve_dispute`` called straight over AMQP, with ``context``
    as its Nameko headers: what anyone who can reach the broker can send."""
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, context_data=context, timeout=10) as cluster:
        return cluster.contracts.resolve_dispute(
            str(uuid.uuid4()), "m-1", {"to_seller": 1, "note": "as I please"}
        )


def refusal(amqp_uri: str, context: dict[str, str]) -> str:
    with pytest.raises(RemoteError) as refused:
        call_resolve(amqp_uri, context)
    assert refused.value.exc_type == "UnverifiedActor", refused.value
    return str(refused.value.value)


def test_an_rpc_with_forged_admin_headers_is_refused(deal: Deal, amqp_uri: str):  # noqa: F811
    admin = {"actor_id": "someone", "actor_roles": "admin"}
    assert "no actor assertion" in refusal(amqp_uri, admin)

    call = "contracts.resolve_dispute"
    as_admin = Actor("someone", ("admin",))
    forged = sign_assertion(STRANGER, as_admin, call)
    assert "unknown key" in refusal(amqp_uri, {**admin, ASSERTION: forged})

    gateway = signer("actor")
    other_call = sign_assertion(gateway, as_admin, "contracts.cancel")
    assert "not contracts.resolve_dispute" in refusal(amqp_uri, {ASSERTION: other_call})
    expired = sign_assertion(gateway, as_admin, call, now=time.time() - 3600)
    assert "expired" in refusal(amqp_uri, {ASSERTION: expired})
    as_buyer = sign_assertion(gateway, Actor("someone", ("buyer",)), call)
    with pytest.raises(Forbidden):
        # the plain role header does not make a signed buyer an admin
        call_resolve(amqp_uri, {**admin, ASSERTION: as_buyer})

    # What the gateway signs gets in: the admin is let through, to an unknown contract.
    with pytest.raises(NotFound):
        call_resolve(amqp_uri, {ASSERTION: sign_assertion(gateway, as_admin, call)})


def forged_approval(contract_id: str, milestone_id: str, seller_id: str) -> RecordedEvent:
    """A ``MilestoneApproved`` exactly as the relay would publish it, but never
    appended to the log."""
    return RecordedEvent(
        event_id=uuid.uuid4(),
        type="MilestoneApproved",
        schema_version=1,
        data={
            "milestone_id": milestone_id,
            "automatic": False,
            "amount": 100_000,
            "currency": "USD",
            "seller_id": seller_id,
        },
        metadata=EventMetadata(
            correlation_id="forged", causation_id="forged", actor_id=seller_id, source="contracts"
        ),
        stream=f"contract-{contract_id}",
        revision=9,
        position=10**9,
        recorded_at=datetime.now(UTC),
    )


def parked(amqp_uri: str, count: int) -> list[Any]:
    def take() -> list[Any] | None:
        with Connection(amqp_uri) as conn:
            queue = conn.SimpleQueue(f"{ESCROW_QUEUE}.dead")
            found = []
            while len(found) < count:
                try:
                    message = queue.get(block=True, timeout=0.5)
                except queue.Empty:
                    return None
                message.ack()
                found.append(message)
            return found

    return wait_until(take, timeout=20, what="the forged messages parked")


def test_a_forged_milestone_approved_releases_nothing_and_is_parked(
    deal: Deal,  # noqa: F811
    amqp_uri: str,
):
    buyer, seller = deal.signup(["buyer"]), deal.signup(["seller"])
    b, s = buyer["access_token"], seller["access_token"]
    contract = deal.contract(buyer, seller, 100_000)
    cid, mid = contract["contract_id"], contract["milestones"][0]["milestone_id"]
    assert deal.fund(b, cid, mid).status_code == 201
    deal.milestone_status(s, cid, mid, "funded")

    unsigned = forged_approval(cid, mid, seller["user_id"])
    body = orjson.dumps(registry.publish(unsigned))
    with pika.BlockingConnection(pika.URLParameters(amqp_uri)) as connection:
        channel = connection.channel()
        channel.basic_publish(
            "contracts.events",
            "MilestoneApproved",
            body,
            pika.BasicProperties(
                content_type="application/json",
                message_id=str(unsigned.event_id),
                headers={"nameko.actor_roles": "admin"},
            ),
        )
    by_stranger = AmqpPublisher(amqp_uri, STRANGER)
    by_stranger.publish(forged_approval(cid, mid, seller["user_id"]))
    by_stranger.close()

    messages = parked(amqp_uri, 2)
    assert all(m.headers[ERROR_HEADER].startswith("unverified") for m in messages)
    assert {m.properties["message_id"] for m in messages} >= {str(unsigned.event_id)}
    recorded = [e.type for e in deal.store.read_stream(f"escrow-{cid}")]
    assert recorded == ["FundingRequested", "EscrowFunded"]
    balance = deal.get("/me/balance", s).json()["balances"]
    assert not balance or balance[0]["available"] == 0
    assert deal.get(f"/contracts/{cid}", s).json()["milestones"][0]["status"] == "funded"

    # The real approval, from the log through the relay, still pays.
    assert deal.post(f"/contracts/{cid}/milestones/{mid}/submit", {"note": "Done"}, s).ok
    approved = deal.post(f"/contracts/{cid}/milestones/{mid}/approve", None, b, headers=deal.key())
    assert approved.status_code == 200, approved.text
    paid = deal.visible(
        "/me/balance", s, check=lambda page: page["balances"] and page["balances"][0]["available"]
    )
    assert paid["balances"][0]["available"] == 90_000
