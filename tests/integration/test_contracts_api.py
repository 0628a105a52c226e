"""A contract's whole life through the HTTP API, money included: real identity,
projects, bidding, contracts, escrow and gateway containers, the relay,
RabbitMQ and PostgreSQL."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.service import GatewayService
from services.bidding.service import BiddingService
from services.contracts.service import ContractsService
from services.escrow.service import EscrowService
from services.identity.service import IdentityService
from services.messaging.service import MessagingService
from services.projects.service import ProjectsService
from services.reputation.service import ReputationService
from shared import eventtool
from shared.eventstore.sql import SqlEventStore
from shared.relay import AmqpPublisher, Relay
from shared.sql import create_sql_engine
from shared.testing import free_port, fresh_postgres_database
from tests.integration.helpers import wait_until
from tests.integration.mail import MailCatcher
from tests.integration.test_identity_api import PASSWORD, SECRET, assert_problem, png
from tests.integration.test_projects_api import Market

pytestmark = pytest.mark.integration

REVIEW_SECONDS = 8
REVIEW_WINDOW_SECONDS = 12


def offer_terms(*amounts: int, due_in_days: int = 10) -> dict[str, Any]:
    """Offer terms with one milestone per amount, due ``due_in_days`` apart."""
    milestones = [
        {
            "title": f"Part {i + 1}",
            "amount": amount,
            "due_date": (date.today() + timedelta(days=due_in_days * (i + 1))).isoformat(),
            "revision_limit": 2,
        }
        for i, amount in enumerate(amounts)
    ]
    return {"currency": "USD", "scope": "The shop.", "milestones": milestones}


class Deal(Market):
    gateway_db: str
    event_store_url: str

    def key(self) -> dict[str, str]:
        return {"Idempotency-Key": uuid.uuid4().hex}

    def login(self, email: str) -> dict[str, Any]:
        response = self.post("/auth/login", {"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return response.json()

    def offer(
        self, buyer: dict, seller: dict, *amounts: int, due_in_days: int = 10
    ) -> tuple[dict, dict]:
        """A project, a proposal and an offer of ``amounts``: (proposal, offered contract)."""
        project = self.project(buyer["access_token"])
        proposal = self.post(
            f"/projects/{project['project_id']}/proposals",
            self.proposal_body(),
            seller["access_token"],
        ).json()
        sent = self.post(
            f"/proposals/{proposal['proposal_id']}/offer",
            {"terms": offer_terms(*amounts, due_in_days=due_in_days)},
            buyer["access_token"],
        )
        assert sent.status_code == 201, sent.text
        return proposal, sent.json()

    def contract(
        self, buyer: dict, seller: dict, *amounts: int, due_in_days: int = 10
    ) -> dict[str, Any]:
        """A project, a proposal, an offer of ``amounts`` and its acceptance."""
        _, offer = self.offer(buyer, seller, *amounts, due_in_days=due_in_days)
        accepted = self.post(
            f"/contracts/{offer['contract_id']}/accept", {"version": 1}, seller["access_token"]
        )
        assert accepted.status_code == 200, accepted.text
        return accepted.json()

    def fund(self, token: str, contract_id: str, *milestone_ids: str, card: str = "pm_card_visa"):
        return self.post(
            f"/contracts/{contract_id}/fund",
            {"milestone_ids": list(milestone_ids), "payment_method": card},
            token,
            headers=self.key(),
        )

    def milestone_status(self, token: str, contract_id: str, milestone_id: str, status: str):
        return self.visible(
            f"/contracts/{contract_id}",
            token,
            check=lambda c: (
                {m["milestone_id"]: m["status"] for m in c["milestones"]}[milestone_id] == status
            ),
        )

    def verify(self, projection: str) -> str:
        out = io.BytesIO()
        code = eventtool.main(
            ["--store", self.event_store_url, "verify", projection, "--database", self.gateway_db],
            stdout=out,
        )
        text = out.getvalue().decode()
        assert code == 0, text
        return text


@pytest.fixture
def deal(
    request: pytest.FixtureRequest,
    fresh_pg: str,
    postgres_server: str,
    amqp_uri: str,
    tmp_path: Path,
    container_factory: Any,
    mail_catcher: MailCatcher,
) -> Iterator[Deal]:
    with fresh_postgres_database(postgres_server) as gateway_db:
        port = free_port()
        common = {"AMQP_URI": amqp_uri, "EVENT_STORE_URL": fresh_pg, "JWT_SECRET": SECRET}
        service_config = {
            **common,
            "DATABASE_URL": fresh_pg,
            "CONTRACT_REVIEW_DAYS": REVIEW_SECONDS / 86_400,
            # A milestone due tomorrow (the earliest an offer takes) is due soon.
            "MILESTONE_DUE_REMINDER_HOURS": 48,
            "ESCROW_FUNDING_RECOVERY_SECONDS": 0,
            "REVIEW_WINDOW_DAYS": REVIEW_WINDOW_SECONDS / 86_400,
            "SIGN_UPS_PER_ADDRESS_HOUR": 100_000,  # every user of these tests is 127.0.0.1
            "SMTP_URL": mail_catcher.url,
            # (a test may set more: ``@pytest.mark.parametrize("deal", [{...}], indirect=True)``)
            **getattr(request, "param", {}),
        }
        containers = {}
        for cls in (
            IdentityService,
            ProjectsService,
            BiddingService,
            ContractsService,
            EscrowService,
            MessagingService,
            ReputationService,
        ):
            containers[cls.name] = container_factory(cls, service_config)
            containers[cls.name].start()
        container_factory(
            GatewayService,
            {
                **common,
                "DATABASE_URL": gateway_db,
                "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
                "BLOB_DIR": str(tmp_path / "blobs"),
                "UPLOAD_MAX_BYTES": 150_000,
            },
        ).start()
        store = SqlEventStore(fresh_pg)
        relay = Relay(store, create_sql_engine(fresh_pg), AmqpPublisher(amqp_uri))
        stop = threading.Event()
        relaying = threading.Thread(target=relay.run, args=(stop.is_set, 0.2))
        relaying.start()
        deal = Deal(f"http://127.0.0.1:{port}", store, mails=mail_catcher)
        deal.gateway_db, deal.event_store_url = gateway_db, fresh_pg
        deal.containers = containers
        try:
            yield deal
        finally:
            stop.set()
            relaying.join()
            relay.publisher.close()
            store.close()


def test_three_milestones_approved_auto_approved_and_disputed(deal: Deal):
    buyer, seller = deal.signup(["buyer"]), deal.signup(["seller"])
    admin = deal.admin()
    assert "admin" in admin["roles"]
    b, s = buyer["access_token"], seller["access_token"]

    contract = deal.contract(buyer, seller, 100_000, 50_000, 30_000)
    cid = contract["contract_id"]
    m1, m2, m3 = (m["milestone_id"] for m in contract["milestones"])
    assert contract["review_seconds"] == REVIEW_SECONDS

    # Funding: a key is required; only the buyer; a declined card records nothing held.
    no_key = deal.post(
        f"/contracts/{cid}/fund", {"milestone_ids": [m1], "payment_method": "pm_card_visa"}, b
    )
    assert_problem(no_key, 428, "idempotency_key_required")
    assert_problem(deal.fund(s, cid, m1), 403, "forbidden")
    declined = deal.fund(b, cid, m1, card="pm_card_chargeDeclinedInsufficientFunds")
    assert assert_problem(declined, 402, "payment_failed")["reason"] == "insufficient_funds"
    key = deal.key()
    body = {"milestone_ids": [m1, m2], "payment_method": "pm_card_visa"}
    funded = deal.post(f"/contracts/{cid}/fund", body, b, headers=dict(key))
    assert funded.status_code == 201, funded.text
    assert (funded.json()["amount"], funded.json()["status"]) == (150_000, "succeeded")
    retried = deal.post(f"/contracts/{cid}/fund", body, b, headers=dict(key))
    assert retried.json() == funded.json() and retried.headers["Idempotent-Replayed"] == "true"
    twice = deal.fund(b, cid, m1)
    assert assert_problem(twice, 409, "conflict")["reason"] == "already_funded"
    assert deal.fund(b, cid, m3).status_code == 201
    for m in (m1, m2, m3):
        deal.milestone_status(s, cid, m, "funded")
    charges = [e for e in deal.store.read_stream(f"escrow-{cid}") if e.type == "EscrowFunded"]
    assert sorted(e.data["amount"] for e in charges) == [30_000, 50_000, 100_000]

    # Milestone 1: a submission with a file, a revision, then approval (50 at once).
    deliverable = deal.upload(s, png(2, 2), "deliverable", "design.png").json()
    assert deal.get(f"/files/{deliverable['file_id']}/content", b).status_code == 403
    assert_problem(
        deal.post(f"/contracts/{cid}/milestones/{m1}/submit", {"note": "x"}, b), 403, "forbidden"
    )
    submitted = deal.post(
        f"/contracts/{cid}/milestones/{m1}/submit",
        {"note": "First design", "file_ids": [deliverable["file_id"]]},
        s,
    )
    assert submitted.status_code == 200, submitted.text
    wait_until(
        lambda: deal.get(f"/files/{deliverable['file_id']}/content", b).status_code == 200,
        what="the buyer may download the delivered file",
    )
    asked = deal.post(
        f"/contracts/{cid}/milestones/{m1}/request-changes", {"reason": "Bigger logo"}, b
    )
    assert asked.status_code == 200, asked.text
    resubmitted = deal.post(
        f"/contracts/{cid}/milestones/{m1}/submit", {"note": "Bigger logo now"}, s
    )
    assert resubmitted.status_code == 200, resubmitted.text
    assert_problem(
        deal.post(f"/contracts/{cid}/milestones/{m1}/approve", None, s, headers=deal.key()),
        403,
        "forbidden",
    )

    def approve(_: int) -> int:
        return deal.post(
            f"/contracts/{cid}/milestones/{m1}/approve", None, b, headers=deal.key()
        ).status_code

    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(approve, range(50)))
    assert statuses.count(200) == 1 and statuses.count(409) == 49, statuses
    deal.milestone_status(b, cid, m1, "paid")

    # Milestone 2: the buyer does not answer; the review period runs out.
    progress = deal.post(f"/contracts/{cid}/milestones/{m2}/progress", {"note": "Half way"}, s)
    assert progress.status_code == 200
    assert deal.post(f"/contracts/{cid}/milestones/{m2}/submit", {"note": "Done"}, s).ok
    paid = deal.milestone_status(b, cid, m2, "paid")
    assert [m["paid_amount"] for m in paid["milestones"][:2]] == [100_000, 50_000]
    approvals = [
        e for e in deal.store.read_stream(f"contract-{cid}") if e.type == "MilestoneApproved"
    ]
    assert [(e.data["milestone_id"], e.data["automatic"]) for e in approvals] == [
        (m1, False),
        (m2, True),
    ]

    # Milestone 3: disputed, frozen, split by an administrator.
    dispute = deal.post(
        f"/contracts/{cid}/milestones/{m3}/dispute", {"reason": "Nothing delivered"}, b
    )
    assert dispute.status_code == 200, dispute.text
    frozen = deal.post(f"/contracts/{cid}/milestones/{m3}/submit", {"note": "late"}, s)
    assert_problem(frozen, 409, "conflict")
    resolve = f"/contracts/{cid}/milestones/{m3}/resolve"
    split = {"to_seller": 18_000, "note": "Part was delivered by email"}
    assert_problem(deal.post(resolve, split, b, headers=deal.key()), 403, "forbidden")
    assert_problem(
        deal.post(resolve, {"to_seller": 30_001}, admin["access_token"], headers=deal.key()),
        422,
        "invalid_input",
    )
    resolved = deal.post(resolve, split, admin["access_token"], headers=deal.key())
    assert resolved.status_code == 200, resolved.text

    done = deal.visible(f"/contracts/{cid}", b, check=lambda c: c["status"] == "completed")
    assert [m["status"] for m in done["milestones"]] == ["paid", "paid", "settled"]
    (completed,) = [
        e for e in deal.store.read_stream(f"contract-{cid}") if e.type == "ContractCompleted"
    ]
    assert (completed.data["total_amount"], completed.data["total_paid"]) == (180_000, 168_000)

    # The money: 10% fee on what sellers received; the books balance.
    seller_net = 90_000 + 45_000 + 16_200
    balance = deal.visible(
        "/me/balance", s, check=lambda b_: b_["balances"] and b_["balances"][0]["available"]
    )
    assert balance["balances"][0]["available"] == seller_net
    escrow = deal.visible(
        f"/contracts/{cid}/escrow",
        b,
        check=lambda e: not any(h["held"] or h["disputed"] for h in e["holds"]),
    )
    assert sum(p["amount"] for p in escrow["postings"]) == 0
    assert {h["milestone_id"]: (h["released"], h["refunded"]) for h in escrow["holds"]} == {
        m1: (100_000, 0),
        m2: (50_000, 0),
        m3: (18_000, 12_000),
    }
    buyer_lines = deal.get("/me/statement", b).json()["items"]
    assert sum(line["amount"] for line in buyer_lines) == -180_000 + 12_000
    assert deal.get("/me/balance", b).json()["balances"][0]["in_escrow"] == 0

    # A payout of everything, once; nothing more is available.
    assert_problem(
        deal.post("/me/payouts", {"amount": 1, "currency": "USD"}, s),
        428,
        "idempotency_key_required",
    )
    too_much = deal.post(
        "/me/payouts", {"amount": seller_net + 1, "currency": "USD"}, s, headers=deal.key()
    )
    assert assert_problem(too_much, 409, "conflict")["reason"] == "insufficient_balance"
    payout = deal.post(
        "/me/payouts", {"amount": seller_net, "currency": "USD"}, s, headers=deal.key()
    )
    assert payout.status_code == 201 and payout.json()["status"] == "sent", payout.text
    deal.visible("/me/balance", s, check=lambda b_: b_["balances"][0]["available"] == 0)
    again = deal.post("/me/payouts", {"amount": 1, "currency": "USD"}, s, headers=deal.key())
    assert assert_problem(again, 409, "conflict")["reason"] == "insufficient_balance"

    statement = deal.get("/me/statement", s, params={"format": "csv"})
    assert statement.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(statement.text)))
    assert [r["kind"] for r in rows] == [
        "release",
        "fee",
        "release",
        "fee",
        "release",
        "fee",
        "payout",
    ]
    assert rows[-1]["running_total"] == "0"

    history = deal.get(f"/contracts/{cid}/history", b).json()["items"]
    assert [h["type"] for h in history if h["milestone_id"] == m1][:4] == [
        "MilestoneFunded",
        "WorkSubmitted",
        "ChangesRequested",
        "WorkSubmitted",
    ]
    stranger = deal.signup(["buyer"])
    assert_problem(deal.get(f"/contracts/{cid}/escrow", stranger["access_token"]), 403, "forbidden")

    # The gateway's escrow and contract views equal a rebuild from the log.
    assert "equal to a rebuild" in deal.verify("gateway.escrow")
    assert "equal to a rebuild" in deal.verify("gateway.contracts")


def test_cancellation_by_agreement_refunds_what_is_held(deal: Deal):
    buyer, seller = deal.signup(["buyer"]), deal.signup(["seller"])
    b, s = buyer["access_token"], seller["access_token"]
    contract = deal.contract(buyer, seller, 40_000, 60_000)
    cid = contract["contract_id"]
    m1, m2 = (m["milestone_id"] for m in contract["milestones"])
    assert deal.fund(b, cid, m1).status_code == 201
    deal.milestone_status(s, cid, m1, "funded")
    # A pending milestone is removed by agreement; a funded one cannot be.
    remove = deal.post(f"/contracts/{cid}/changes", {"action": "remove", "milestone_id": m1}, s)
    assert assert_problem(remove, 409, "conflict")["reason"] == "wrong_state"
    proposed = deal.post(f"/contracts/{cid}/changes", {"action": "remove", "milestone_id": m2}, s)
    assert proposed.status_code == 200, proposed.text
    (change,) = proposed.json()["pending_changes"]
    own = deal.post(
        f"/contracts/{cid}/changes/{change['change_id']}/answer",
        {"accept": True},
        s,
        headers=deal.key(),
    )
    assert_problem(own, 403, "forbidden")
    accepted = deal.post(
        f"/contracts/{cid}/changes/{change['change_id']}/answer",
        {"accept": True},
        b,
        headers=deal.key(),
    )
    assert accepted.status_code == 200, accepted.text
    assert [m["status"] for m in accepted.json()["milestones"]] == ["funded", "removed"]

    asked = deal.post(
        f"/contracts/{cid}/cancellation", {"reason": "Plans changed"}, b, headers=deal.key()
    )
    assert (
        asked.status_code == 200 and asked.json()["cancellation"]["proposed_by"] == buyer["user_id"]
    )
    agreed = deal.post(
        f"/contracts/{cid}/cancellation/answer", {"accept": True}, s, headers=deal.key()
    )
    assert agreed.status_code == 200 and agreed.json()["status"] == "cancelled", agreed.text
    escrow = deal.visible(
        f"/contracts/{cid}/escrow", b, check=lambda e: e["holds"] and e["holds"][0]["refunded"]
    )
    assert escrow["holds"][0]["refunded"] == 40_000 and escrow["holds"][0]["held"] == 0
    # The refund reached the provider against the charge, and says so.
    escrow = deal.visible(
        f"/contracts/{cid}/escrow",
        b,
        check=lambda e: e["refunds"] and e["refunds"][0]["status"] != "requested",
    )
    (refund,) = escrow["refunds"]
    assert (refund["status"], refund["amount"], refund["milestone_id"]) == ("succeeded", 40_000, m1)
    assert refund["charge_reference"].startswith("sandbox_ch_")
    assert refund["reference"].startswith("sandbox_re_")
    lines = deal.get("/me/statement", b, params={"contract_id": cid}).json()["items"]
    assert [(x["kind"], x["amount"], x["refund_status"]) for x in lines] == [
        ("charge", -40_000, None),
        ("refund", 40_000, "succeeded"),
    ]
    assert lines[1]["refund_id"] == refund["refund_id"]
    assert_problem(deal.fund(b, cid, m1), 409, "conflict")
    assert "equal to a rebuild" in deal.verify("gateway.escrow")


def test_a_refund_the_provider_declines_stays_visible_as_failed(deal: Deal):
    """The sandbox declines refunds of a pm_card_refundFail charge: the money is
    recorded as returned, and the refund reads failed until a retry succeeds."""
    buyer, seller = deal.signup(["buyer"]), deal.signup(["seller"])
    b, s = buyer["access_token"], seller["access_token"]
    contract = deal.contract(buyer, seller, 25_000)
    cid, m1 = contract["contract_id"], contract["milestones"][0]["milestone_id"]
    assert deal.fund(b, cid, m1, card="pm_card_refundFail").status_code == 201
    deal.milestone_status(s, cid, m1, "funded")
    asked = deal.post(f"/contracts/{cid}/cancellation", {"reason": "No"}, b, headers=deal.key())
    assert asked.status_code == 200, asked.text
    agreed = deal.post(
        f"/contracts/{cid}/cancellation/answer", {"accept": True}, s, headers=deal.key()
    )
    assert agreed.status_code == 200, agreed.text
    escrow = deal.visible(
        f"/contracts/{cid}/escrow",
        b,
        check=lambda e: e["refunds"] and e["refunds"][0]["status"] == "failed",
    )
    (refund,) = escrow["refunds"]
    assert (refund["amount"], refund["failure_reason"], refund["reference"]) == (
        25_000,
        "refund_failed",
        None,
    )
    lines = deal.visible(
        f"/me/statement?contract_id={cid}",
        b,
        check=lambda st: [x.get("refund_status") for x in st["items"]] == [None, "failed"],
    )["items"]
    assert [(x["kind"], x["amount"]) for x in lines] == [("charge", -25_000), ("refund", 25_000)]
    assert "equal to a rebuild" in deal.verify("gateway.escrow")


def test_an_interrupted_charge_is_completed_by_recovery(deal: Deal):
    """A crash between reserving and recording the charge's outcome: recovery
    asks the provider about the same charge id and records it, once."""
    from nameko.testing.services import entrypoint_hook

    from services.escrow import domain as escrow_domain
    from services.escrow.service import escrow_stream
    from shared.context import Context
    from shared.eventlog import ServiceEventLog

    buyer, seller = deal.signup(["buyer"]), deal.signup(["seller"])
    contract = deal.contract(buyer, seller, 25_000)
    cid, m1 = contract["contract_id"], contract["milestones"][0]["milestone_id"]
    log = ServiceEventLog(deal.store, Context("c", "c", buyer["user_id"], "escrow"))
    terms, _ = log.state(
        f"contract-{cid}", escrow_domain.evolve_contract, escrow_domain.ContractTerms()
    )
    log.command(
        escrow_stream(cid),
        escrow_domain.evolve,
        None,
        lambda s: escrow_domain.request_funding(
            s or escrow_domain.Escrow(), terms, buyer["user_id"], [m1], "pm_card_visa", "charge-1"
        ),
    )
    engine = create_sql_engine(deal.event_store_url)

    def pending() -> bool:
        with engine.connect() as conn:
            return bool(
                conn.execute(
                    sa.text("SELECT count(*) FROM escrow_charges WHERE status = 'requested'")
                ).scalar()
            )

    wait_until(pending, what="the escrow view sees the pending charge")
    with entrypoint_hook(deal.containers["escrow"], "recover") as recover:
        assert recover() >= 1
    deal.milestone_status(buyer["access_token"], cid, m1, "funded")
    funded = [e for e in deal.store.read_stream(f"escrow-{cid}") if e.type == "EscrowFunded"]
    assert len(funded) == 1 and funded[0].data["charge_id"] == "charge-1"
    with entrypoint_hook(deal.containers["escrow"], "recover") as recover:
        recover()
    assert (
        len([e for e in deal.store.read_stream(f"escrow-{cid}") if e.type == "EscrowFunded"]) == 1
    )
    engine.dispose()
