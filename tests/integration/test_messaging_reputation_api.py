"""Conversations, notifications and reviews through the HTTP API, against every
service's container, the relay, RabbitMQ and PostgreSQL."""

from __future__ import annotations

import io
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import requests
import sqlalchemy as sa

from gateway.routes.messaging import KEEPALIVE_SECONDS
from services.reputation import formula
from services.reputation.domain import ContractEnd
from services.reputation.views import ReputationView, reputations
from shared import eventtool
from shared.eventtool import table_rows
from shared.projection import ProjectionRunner
from shared.sql import create_sql_engine, temporary_database
from tests.integration.helpers import wait_until
from tests.integration.test_contracts_api import REVIEW_WINDOW_SECONDS, Deal
from tests.integration.test_identity_api import assert_problem, png

pytestmark = pytest.mark.integration

SELLER_REVIEW = {
    "rating": 5,
    "categories": {"quality": 5, "communication": 4, "expertise": 5, "deadlines": 5, "value": 4},
    "text": "Great work, on time.",
}
BUYER_REVIEW = {
    "rating": 4,
    "categories": {"clarity": 4, "communication": 5, "payment_promptness": 5},
    "text": "Clear brief, paid promptly.",
}


def completed_contract(deal: Deal, buyer: dict, seller: dict, amount: int = 50_000) -> str:
    b, s = buyer["access_token"], seller["access_token"]
    contract = deal.contract(buyer, seller, amount)
    cid, m1 = contract["contract_id"], contract["milestones"][0]["milestone_id"]
    assert deal.fund(b, cid, m1).status_code == 201
    deal.milestone_status(s, cid, m1, "funded")
    assert deal.post(f"/contracts/{cid}/milestones/{m1}/submit", {"note": "done"}, s).ok
    assert deal.post(f"/contracts/{cid}/milestones/{m1}/approve", None, b, headers=deal.key()).ok
    deal.visible(f"/contracts/{cid}", b, check=lambda c: c["status"] == "completed")
    return cid


def kinds(deal: Deal, token: str) -> list[str]:
    items = deal.get("/me/notifications", token, params={"limit": 100}).json()["items"]
    return [n["kind"] for n in reversed(items)]


def test_an_interview_with_an_attachment_and_read_receipts(deal: Deal):
    buyer, seller, stranger = (
        deal.signup(["buyer"]),
        deal.signup(["seller"]),
        deal.signup(["seller"]),
    )
    b, s = buyer["access_token"], seller["access_token"]
    project = deal.project(b)
    proposal = deal.post(
        f"/projects/{project['project_id']}/proposals", deal.proposal_body(), s
    ).json()
    start = {"proposal_id": proposal["proposal_id"]}
    assert_problem(deal.post("/conversations", start, stranger["access_token"]), 403, "forbidden")
    assert_problem(deal.post("/conversations", {}, b), 422, "invalid_input")
    opened = deal.post("/conversations", start, b)
    assert opened.status_code == 200, opened.text
    conversation = opened.json()
    cid = conversation["conversation_id"]
    assert deal.post("/conversations", start, s).json()["conversation_id"] == cid  # the same one

    sample = deal.upload(s, png(3, 3), "message", "sample.png").json()
    path = f"/conversations/{cid}/messages"
    assert deal.post(path, {"text": "When could you start?"}, b).status_code == 201
    assert_problem(
        deal.post(path, {"text": "x", "file_ids": [sample["file_id"]]}, b), 422, "invalid_input"
    )  # not the buyer's file
    sent = deal.post(
        path, {"text": "Monday; here is a sample.", "file_ids": [sample["file_id"]]}, s
    )
    assert sent.status_code == 201 and sent.json()["seq"] == 2, sent.text
    assert_problem(deal.post(path, {"text": "hi"}, stranger["access_token"]), 403, "forbidden")
    assert_problem(deal.get(path, stranger["access_token"]), 403, "forbidden")

    mine = deal.visible("/me/conversations", b, check=lambda c: c["total_unread"] == 1)
    assert mine["items"][0]["unread"] == 1
    newest = deal.get(path, b, params={"limit": 1}).json()
    assert [m["text"] for m in newest["items"]] == ["Monday; here is a sample."]
    older = deal.get(path, b, params={"limit": 1, "cursor": newest["next_cursor"]}).json()
    assert [m["text"] for m in older["items"]] == ["When could you start?"]
    assert older["next_cursor"] is None
    oldest_first = deal.get(path, b, params={"order": "asc"}).json()["items"]
    assert [m["seq"] for m in oldest_first] == [1, 2]
    wait_until(
        lambda: deal.get(f"/files/{sample['file_id']}/content", b).status_code == 200,
        what="the buyer may open the attachment",
    )
    assert (
        deal.get(f"/files/{sample['file_id']}/content", stranger["access_token"]).status_code == 403
    )

    assert_problem(deal.post(f"/conversations/{cid}/read", {"up_to": 9}, b), 409, "conflict")
    assert deal.post(f"/conversations/{cid}/read", {"up_to": 2}, b).ok
    receipt = deal.visible(f"/conversations/{cid}", s, check=lambda c: c["read_by_other"] == 2)
    assert receipt["unread"] == 1  # the seller has not read the buyer's question
    deal.visible("/me/conversations", b, check=lambda c: c["total_unread"] == 0)
    assert "equal to a rebuild" in deal.verify("gateway.messaging")


def stream(deal: Deal, **kw: Any) -> requests.Response:
    return requests.get(deal.url("/me/notifications/stream"), stream=True, timeout=30, **kw)


def test_a_stream_ticket_works_once_for_its_user_and_streams_are_capped(deal: Deal):
    user = deal.signup(["seller"])
    token = user["access_token"]
    assert_problem(stream(deal), 401, "unauthorized")
    assert_problem(stream(deal, params={"ticket": "made-up"}), 401, "unauthorized")
    issued = deal.post("/me/notifications/stream-ticket", None, token)
    assert issued.status_code == 200 and issued.json()["expires_in"] == 30
    assert issued.headers["Cache-Control"] == "no-store"
    ticket = issued.json()["ticket"]
    with stream(deal, params={"ticket": ticket}) as first:
        assert first.status_code == 200
        assert first.headers["Content-Type"].startswith("text/event-stream")
        assert next(first.iter_lines()) == b"retry: 2000"
        reused = stream(deal, params={"ticket": ticket})
        assert assert_problem(reused, 401, "unauthorized")["reason"] == "invalid_ticket"
    bearer = {"Authorization": f"Bearer {token}"}
    malformed = stream(deal, headers={**bearer, "Last-Event-ID": "\u00b2"})
    assert_problem(malformed, 400, "bad_request")
    assert_problem(stream(deal, headers={**bearer, "Last-Event-ID": "-1"}), 400, "bad_request")

    # A logout ends an open stream within seconds, and voids a ticket made before it.
    leaving = deal.signup(["seller"])
    made = deal.post("/me/notifications/stream-ticket", None, leaving["access_token"])
    with stream(deal, headers={"Authorization": f"Bearer {leaving['access_token']}"}) as live:
        lines = live.iter_lines()
        assert next(lines) == b"retry: 2000"
        out = deal.post("/auth/logout", {"refresh_token": leaving["refresh_token"]})
        assert out.status_code == 204, out.text
        started = time.monotonic()
        for _ in lines:  # until the server ends it
            pass
        assert time.monotonic() - started < 10
    void = stream(deal, params={"ticket": made.json()["ticket"]})
    assert_problem(void, 401, "session_ended")

    # Five tabs at once, not a sixth. A closed stream counts until a write to it
    # fails: a reload's old stream stops counting within a few seconds (the
    # keep-alive), so a person who reloads does not lose the live stream.
    tabs = deal.signup(["seller"])["access_token"]
    open_streams = []
    try:
        for _ in range(5):
            opened = stream(deal, headers={"Authorization": f"Bearer {tabs}"})
            assert opened.status_code == 200
            next(opened.iter_lines())  # the server is streaming: it counts
            open_streams.append(opened)
        sixth = stream(deal, headers={"Authorization": f"Bearer {tabs}"})
        assert_problem(sixth, 429, "too_many_requests")
        with stream(deal, headers=bearer) as theirs:
            assert theirs.status_code == 200  # the cap is per user
        open_streams.pop(0).close()  # a tab reloads: its stream's socket closes
        started = time.monotonic()

        def reopened() -> Any:
            again = stream(deal, headers={"Authorization": f"Bearer {tabs}"})
            if again.status_code == 200:
                return again
            again.close()
            return None

        open_streams.append(wait_until(reopened, timeout=10, interval=0.5, what="a stream again"))
        assert time.monotonic() - started < 4 * KEEPALIVE_SECONDS
    finally:
        for opened in open_streams:
            opened.close()


def test_a_contracts_life_reaches_both_inboxes_live_and_reviews_are_double_blind(deal: Deal):
    buyer, seller, stranger = (
        deal.signup(["buyer"]),
        deal.signup(["seller"]),
        deal.signup(["buyer"]),
    )
    b, s = buyer["access_token"], seller["access_token"]

    received: list[dict[str, Any]] = []
    stop = threading.Event()

    ticket = deal.post("/me/notifications/stream-ticket", None, s).json()["ticket"]

    def listen() -> None:
        # As a browser's EventSource: no Authorization header, a ticket in the URL.
        with requests.get(
            deal.url("/me/notifications/stream"),
            params={"ticket": ticket},
            stream=True,
            timeout=60,
        ) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream"), (
                response.status_code,
                response.raw.read(300),
            )
            for line in response.iter_lines():
                if line.startswith(b"data: "):
                    received.append(orjson.loads(line[6:]))
                if stop.is_set():
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(0.5)

    cid = completed_contract(deal, buyer, seller)
    expected_seller = ["offer_received", "milestone_funded", "approved", "payment_released"]
    wait_until(
        lambda: all(k in kinds(deal, s) for k in [*expected_seller, "contract_completed"]),
        what="the seller's notifications",
    )
    wait_until(
        lambda: all(
            k in kinds(deal, b)
            for k in ("proposal_received", "offer_accepted", "work_submitted", "contract_completed")
        ),
        what="the buyer's notifications",
    )
    wait_until(lambda: len(received) >= 4, what="live delivery to the seller's stream")
    stop.set()
    assert [n["kind"] for n in received][:2] == ["offer_received", "milestone_funded"]
    assert all(n["link"]["type"] in ("contract", "project", "proposal") for n in received)
    inbox = deal.get("/me/notifications", s, params={"unread": "true"}).json()
    assert inbox["unread"] == len(inbox["items"]) >= 5
    first = inbox["items"][0]["notification_id"]
    assert deal.post("/me/notifications/read", {"notification_ids": [first]}, s).ok
    deal.visible("/me/notifications", s, check=lambda n: n["unread"] == inbox["unread"] - 1)
    assert deal.post("/me/notifications/read", {"all": True}, s).ok
    deal.visible("/me/notifications", s, check=lambda n: n["unread"] == 0)

    # Reviews: only the parties, once each, hidden until both reviewed.
    path = f"/contracts/{cid}/reviews"
    assert_problem(deal.post(path, BUYER_REVIEW, stranger["access_token"]), 403, "forbidden")
    assert_problem(deal.post(path, BUYER_REVIEW, b), 422, "invalid_input")  # wrong categories
    first_review = deal.post(path, SELLER_REVIEW, b)
    assert first_review.status_code == 201 and first_review.json()["revealed"] is False
    assert_problem(deal.post(path, SELLER_REVIEW, b), 409, "conflict")
    hidden = deal.visible(path, s, check=lambda r: r["pending_from_other"])
    assert hidden["items"] == [] and hidden["revealed"] is False
    wait_until(lambda: "review_received" in kinds(deal, s), what="review received")
    assert deal.get(f"/users/{seller['user_id']}/reviews").json()["items"] == []

    second = deal.post(path, BUYER_REVIEW, s)
    assert second.status_code == 201 and second.json()["revealed"] is True
    both = deal.visible(path, s, check=lambda r: r["revealed"])
    assert {r["reviewer_id"] for r in both["items"]} == {buyer["user_id"], seller["user_id"]}
    public = deal.get(f"/users/{seller['user_id']}/reviews").json()["items"]
    assert [r["rating"] for r in public] == [5]

    profile = deal.visible(
        f"/users/{seller['user_id']}/profile",
        check=lambda p: (p["reputation"]["as_seller"] or {}).get("reviews") == 1,
    )
    rep = profile["reputation"]["as_seller"]
    assert rep["formula_version"] == formula.FORMULA_VERSION
    assert rep["score"] > formula.PRIOR_MEAN and rep["completion_rate"] == 100
    assert rep["job_success"] == 100
    wait_until(lambda: "reviews_revealed" in kinds(deal, b), what="reviews revealed")

    # The seller's next proposal shows that reputation to the next buyer.
    other_buyer = deal.signup(["buyer"])
    project = deal.project(other_buyer["access_token"])
    deal.post(f"/projects/{project['project_id']}/proposals", deal.proposal_body(), s)
    listing = deal.visible(
        f"/projects/{project['project_id']}/proposals",
        other_buyer["access_token"],
        check=lambda page: page["items"],
    )
    assert listing["items"][0]["seller"]["reputation"]["score"] == rep["score"]

    assert "equal to a rebuild" in deal.verify("gateway.notifications")
    assert "equal to a rebuild" in deal.verify("gateway.reputation")


def test_a_lone_review_is_revealed_when_the_window_closes(deal: Deal):
    buyer, seller = deal.signup(["buyer"]), deal.signup(["seller"])
    cid = completed_contract(deal, buyer, seller)
    assert deal.post(f"/contracts/{cid}/reviews", BUYER_REVIEW, seller["access_token"]).ok
    revealed = deal.visible(
        f"/contracts/{cid}/reviews", buyer["access_token"], check=lambda r: r["revealed"]
    )
    assert [r["rating"] for r in revealed["items"]] == [4]
    late = deal.post(f"/contracts/{cid}/reviews", SELLER_REVIEW, buyer["access_token"])
    assert assert_problem(late, 409, "conflict")["reason"] == "window_closed"
    events = [e.type for e in deal.store.read_stream(f"feedback-{cid}")]
    assert events == ["FeedbackWindowOpened", "ReviewSubmitted", "ReviewsRevealed"]
    assert REVIEW_WINDOW_SECONDS < 20


def test_reputation_equals_its_rebuild_and_an_export_after_a_long_random_scenario(
    deal: Deal, postgres_server: str
):
    """Hundreds of ended contracts and reviews, recorded as the reputation
    service records them; the view, its rebuild and a recomputation from the
    exported events agree."""
    from datetime import datetime

    from services.reputation import domain
    from services.reputation.service import feedback_stream
    from shared.context import Context
    from shared.eventlog import ServiceEventLog

    rng = random.Random(42)
    log = ServiceEventLog(deal.store, Context("c", "c", "system:test", "reputation"))
    users = [f"user-{i}" for i in range(15)]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(300):
        buyer, seller = rng.sample(users, 2)
        contract_id = f"00000000-0000-4000-8000-{n:012d}"
        ended = start + timedelta(days=n * 1.3)
        outcome = {
            "outcome": rng.choice(("completed", "completed", "completed", "cancelled")),
            "total_amount": rng.randint(1_000, 5_000_000),
            "total_paid": 0,
            "currency": "USD",
            "on_time": rng.random() < 0.8,
            # (cancelled after funding: the money went back, so it was work to review)
            "refund_milestone_ids": ["m1"],
        }
        end = ContractEnd(contract_id, buyer, seller, outcome, ended)
        stream = feedback_stream(contract_id)
        log.command(
            stream,
            domain.evolve,
            domain.Feedback(),
            lambda s, e=end: domain.open_window(s, e, timedelta(days=14)),
        )
        reviewers = rng.sample([buyer, seller], rng.randint(0, 2))
        for reviewer in reviewers:
            review = SELLER_REVIEW if reviewer == buyer else BUYER_REVIEW
            review = {**review, "rating": rng.randint(1, 5)}
            log.command(
                stream,
                domain.evolve,
                domain.Feedback(),
                lambda s, e=end, r=reviewer, v=review, t=ended: domain.submit_review(
                    s, e, r, v, t + timedelta(days=1), timedelta(days=14)
                ),
            )
        if len(reviewers) == 1:
            log.command(
                stream,
                domain.evolve,
                domain.Feedback(),
                lambda s, t=ended: domain.reveal_when_closed(s, t + timedelta(days=15)),
            )

    engine = create_sql_engine(deal.gateway_db)
    last = deal.store.last_position()  # the scenario's last event (it is a feedback one)
    live = ProjectionRunner(ReputationView(), deal.store, engine)
    wait_until(
        lambda: (live.checkpoint() or 0) >= last,
        timeout=60,
        what="the gateway's reputation view catches up",
    )
    deal.verify("gateway.reputation")
    with temporary_database(postgres_server) as scratch:
        rebuilt = create_sql_engine(scratch)
        ProjectionRunner(ReputationView(), deal.store, rebuilt).rebuild()
        for table in ReputationView.metadata.sorted_tables:
            if table.name != "reputations":
                continue
            live_rows = table_rows(engine, table)
            mine = [r for r in live_rows if orjson.loads(r[0]).startswith("user-")]
            theirs = [
                r for r in table_rows(rebuilt, table) if orjson.loads(r[0]).startswith("user-")
            ]
            assert mine == theirs and len(mine) >= 20
        rebuilt.dispose()

    # An analyst's recomputation from the export, with the published formula.
    out = io.BytesIO()
    assert (
        eventtool.main(
            ["--store", deal.event_store_url, "export", "--category", "feedback"], stdout=out
        )
        == 0
    )
    recomputed = recompute([orjson.loads(line) for line in out.getvalue().splitlines()])
    with engine.connect() as conn:
        for row in conn.execute(sa.select(reputations).where(reputations.c.user_id.like("user-%"))):
            value = recomputed[(row.user_id, row.role)]
            assert row.score_hundredths == (
                None if value["score"] is None else round(value["score"] * 100)
            )
            assert (row.reviews, row.job_success, row.rehire_rate) == (
                value["reviews"],
                value["job_success"],
                value["rehire_rate"],
            )
    engine.dispose()


def recompute(envelopes: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """docs/reputation.md, applied to exported JSON lines."""

    windows, pending, revealed = {}, {}, []
    for e in envelopes:
        d = e["data"]
        if e["event_type"] == "FeedbackWindowOpened":
            windows[d["contract_id"]] = d
        elif e["event_type"] == "ReviewSubmitted":
            pending.setdefault(d["contract_id"], []).append(d)
        elif e["event_type"] == "ReviewsRevealed":
            revealed += pending.pop(d["contract_id"], [])
    result = {}
    for role, me, other in (
        ("seller", "seller_id", "buyer_id"),
        ("buyer", "buyer_id", "seller_id"),
    ):
        for user in {w[me] for w in windows.values()}:
            ended = [
                formula.EndedContract(
                    w["contract_id"],
                    w[other],
                    w["outcome"],
                    w["total_amount"],
                    w["on_time"],
                    datetime.fromisoformat(w["ended_at"]),
                )
                for w in windows.values()
                if w[me] == user
            ]
            rated = [
                formula.Review(r["contract_id"], r["rating"])
                for r in revealed
                if r["reviewee_id"] == user and r["reviewee_role"] == role
            ]
            result[(user, role)] = formula.reputation(ended, rated)
    return result
