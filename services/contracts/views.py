"""Contracts' published read side: contracts, their milestones, every offer
version, and each milestone's history.

The view folds the published events with the same ``evolve`` the service's
rules decide on (``services.contracts.contract``) and stores the folded
state, so what a party reads is exactly what the service decides on. The
milestone rows are derived from that state for queries: the review timer's
due milestones, overdue milestones, a user's contracts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.contracts import contract as contract_state
from services.contracts import hourly as hourly_rules
from services.contracts.contract import Contract, Milestone
from shared.errors import NotFound
from shared.jsonready import aware, json_ready
from shared.personal import erase_fields
from shared.projection import Projection
from shared.schemas import ERASED, PublishedEvent, registry

metadata = sa.MetaData()

contracts = sa.Table(
    "contracts",
    metadata,
    sa.Column("contract_id", sa.String(64), primary_key=True),
    sa.Column("buyer_id", sa.String(64), nullable=False, index=True),
    sa.Column("seller_id", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("offer_expires_at", sa.DateTime(timezone=True), index=True),
    # (set while the offer waits for an answer: the expiry timer's candidates)
)

milestones = sa.Table(
    "contract_milestones",
    metadata,
    sa.Column("contract_id", sa.String(64), primary_key=True),
    sa.Column("milestone_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("review_due_at", sa.DateTime(timezone=True), index=True),
)

offer_versions = sa.Table(
    "offer_versions",
    metadata,
    sa.Column("contract_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("terms", sa.JSON, nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("answers", sa.JSON, nullable=False),
)

OFFER_ANSWERS = {
    "OfferChangesRequested": "changes_requested",
    "OfferDeclined": "declined",
    "OfferWithdrawn": "withdrawn",
    "OfferExpired": "expired",
    "ContractStarted": "accepted",
}
"""What was said to an offer version: its ``answers`` in the offer's history
(a change request, then perhaps a withdrawal or a decline)."""
PERSONAL_ANSWERS = ("changes_requested", "declined", "withdrawn")
"""Answers whose message is their author's personal data."""

hourly_due = sa.Table(
    "contract_hourly_due",
    metadata,
    sa.Column("contract_id", sa.String(64), primary_key=True),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False, index=True),
)
"""When the clock next has something to decide for an hourly contract: its
next week's close, or the earliest invoice's end of review."""

HISTORY_TYPES = (
    "MilestoneFunded",
    "WorkSubmitted",
    "ChangesRequested",
    "MilestoneApproved",
    "MilestonePaid",
    "ProgressReported",
    "MilestoneDisputed",
    "DisputeResolved",
    "MilestoneSettled",
    "MilestoneChangeProposed",
    "MilestoneChangeAccepted",
    "MilestoneChangeRejected",
    "CancellationProposed",
    "CancellationRejected",
    *hourly_rules.HOURLY_EVENTS,
)

history = sa.Table(
    "contract_history",
    metadata,
    sa.Column("position", sa.BigInteger, primary_key=True),
    sa.Column("contract_id", sa.String(64), nullable=False, index=True),
    sa.Column("milestone_id", sa.String(64)),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("actor_id", sa.String(64)),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)


def erase(conn: Connection, person: str) -> None:
    """The person's texts in the contracts they are a party of: the history's
    notes and reasons, a cancellation they proposed, and a seller's memos."""
    mine = sa.or_(contracts.c.buyer_id == person, contracts.c.seller_id == person)
    for row in conn.execute(sa.select(contracts.c.contract_id, contracts.c.state).where(mine)):
        state = row.state
        cancellation = state.get("cancellation")
        if cancellation and cancellation.get("proposed_by") == person:
            state = {**state, "cancellation": {**cancellation, "reason": ERASED}}
        hourly = state.get("hourly")
        if hourly and state.get("seller_id") == person and hourly["entries"]:
            # The seller's memos (only the seller records time).
            entries = [{**e, "memo": ERASED} for e in hourly["entries"]]
            state = {**state, "hourly": {**hourly, "entries": entries}}
        if state is not row.state:
            conn.execute(
                contracts.update()
                .where(contracts.c.contract_id == row.contract_id)
                .values(state=state)
            )
        h = history.c
        for entry in conn.execute(
            sa.select(h.position, h.type, h.actor_id, h.data).where(
                h.contract_id == row.contract_id
            )
        ):
            personal = registry.personal_fields(entry.type, registry.current_version(entry.type))
            data = erase_fields(personal, entry.data, person, row.contract_id, entry.actor_id or "")
            if data != entry.data:
                conn.execute(history.update().where(h.position == entry.position).values(data=data))
        o = offer_versions.c
        for version in conn.execute(
            sa.select(o.version, o.answers).where(o.contract_id == row.contract_id)
        ):
            # (as a rebuild reads them: the person's texts, empty or not, erased)
            answers = [
                {**a, "message": ERASED}
                if a["by"] == person and a["type"] in PERSONAL_ANSWERS
                else a
                for a in version.answers
            ]
            if answers != version.answers:
                conn.execute(
                    offer_versions.update()
                    .where(o.contract_id == row.contract_id, o.version == version.version)
                    .values(answers=answers)
                )


# -- the folded state, stored as JSON ----------------------------------------------


def state_to_json(state: Contract) -> dict[str, Any]:
    hourly = None if state.hourly is None else hourly_rules.to_json(state.hourly)
    plain = replace(state, hourly=None, reminders=frozenset())
    return {**json_ready(asdict(plain)), "hourly": hourly, "reminders": sorted(state.reminders)}


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def state_from_json(data: dict[str, Any]) -> Contract:
    ms = {
        k: Milestone(
            **{
                **m,
                "due_date": date.fromisoformat(m["due_date"]),
                "review_due_at": _dt(m["review_due_at"]),
                "delivered_at": _dt(m["delivered_at"]),
            }
        )
        for k, m in data["milestones"].items()
    }
    hourly = data.get("hourly")
    plain = {**data, "milestones": {}, "hourly": None, "reminders": frozenset()}
    return replace(
        Contract(**{**plain, "offer_expires_at": _dt(data.get("offer_expires_at"))}),
        milestones=ms,
        reminders=frozenset(data.get("reminders") or ()),
        hourly=None if hourly is None else hourly_rules.from_json(hourly),
    )


def hourly_document(h: hourly_rules.Hourly, today: date) -> dict[str, Any]:
    week = hourly_rules.week_of(h, today)
    billed, paid = hourly_rules.totals(h)
    return {
        "rate": h.rate,
        "weekly_limit": hourly_rules.limit_for(h, week),
        "paused": hourly_rules.paused_in(h, week),
        "ended": h.ended_week is not None,
        "start_date": h.start_date.isoformat(),
        "billed": billed,
        "paid": paid,
        "weeks": hourly_rules.weeks(h, today),
    }


def document(state: Contract, today: date) -> dict[str, Any]:
    """A contract as its parties read it (the API's ContractResponse)."""
    overdue = set(contract_state.overdue_milestones(state, today))
    listed = [
        {
            **json_ready(asdict(m)),
            "overdue": m.milestone_id in overdue,
        }
        for m in state.milestones.values()
    ]
    return json_ready(
        {
            "contract_id": state.contract_id,
            "project_id": state.project_id,
            "proposal_id": state.proposal_id,
            "buyer_id": state.buyer_id,
            "seller_id": state.seller_id,
            "status": state.status,
            "offer_version": state.offer_version,
            "offer_expires_at": (
                state.offer_expires_at if state.status in ("offered", "expired") else None
            ),
            "review_seconds": state.review_seconds,
            "terms": state.terms,
            "milestones": listed,
            "pending_changes": list(state.pending_changes.values()),
            "cancellation": state.cancellation,
            "hourly": None if state.hourly is None else hourly_document(state.hourly, today),
        }
    )


class ContractsView(Projection):
    name = "contracts"
    version = 4
    metadata = metadata
    categories: Sequence[str] | None = ("contract", "user")
    event_types: Sequence[str] = (
        "PersonalDataErased",
        "OfferSent",
        "OfferRevised",
        "OfferChangesRequested",
        "OfferDeclined",
        "OfferWithdrawn",
        "OfferExpired",
        "ContractStarted",
        "ContractCompleted",
        "ContractCancelled",
        *HISTORY_TYPES,
    )

    def __init__(self, own_streams_only: bool = False) -> None:
        """``own_streams_only``: the owning service's copy, which reads no other
        service's streams and so hears of erasures through RabbitMQ instead
        (its handler calls :func:`erase`, as this view does on the event)."""
        if own_streams_only:
            self.categories = tuple(c for c in self.categories or () if c != "user")
            self.event_types = tuple(t for t in self.event_types if t != "PersonalDataErased")

    # ``PersonalDataErased``: what the log reads as once the person's keys are
    # gone (their fields "[erased]"), so live processing equals a rebuild.

    def apply(self, conn: Connection, event: PublishedEvent) -> None:
        if event.type == "PersonalDataErased":
            erase(conn, event.data["user_id"])
            return
        contract_id = event.subject
        where = contracts.c.contract_id == contract_id
        if event.type == "OfferSent":
            before = Contract()
        else:
            stored = conn.execute(sa.select(contracts.c.state).where(where)).scalar_one()
            before = state_from_json(stored)
        state = contract_state.evolve(before, event)
        values = {
            "buyer_id": state.buyer_id,
            "seller_id": state.seller_id,
            "status": state.status,
            "state": state_to_json(state),
            "updated_at": event.recorded_at,
            "offer_expires_at": state.offer_expires_at if state.status == "offered" else None,
        }
        if event.type == "OfferSent":
            conn.execute(contracts.insert().values(contract_id=contract_id, **values))
        else:
            conn.execute(contracts.update().where(where).values(**values))
        if event.type in ("OfferSent", "OfferRevised"):
            conn.execute(
                offer_versions.insert().values(
                    contract_id=contract_id,
                    version=state.offer_version,
                    terms=json_ready(state.terms),
                    sent_at=event.recorded_at,
                    expires_at=state.offer_expires_at,
                    answers=[],
                )
            )
        if event.type in OFFER_ANSWERS:
            version = event.data.get("version") or event.data["offer_version"]
            answer = {
                "type": OFFER_ANSWERS[event.type],
                "by": None if event.type == "OfferExpired" else event.metadata.actor_id,
                "message": event.data.get("message") or event.data.get("reason") or "",
                "at": json_ready(event.recorded_at),
            }
            where_version = (
                offer_versions.c.contract_id == contract_id,
                offer_versions.c.version == version,
            )
            said = conn.execute(sa.select(offer_versions.c.answers).where(*where_version))
            conn.execute(
                offer_versions.update()
                .where(*where_version)
                .values(answers=[*(said.scalar_one() or []), answer])
            )
        if event.type in HISTORY_TYPES:
            conn.execute(
                history.insert().values(
                    position=event.position,
                    contract_id=contract_id,
                    milestone_id=event.data.get("milestone_id"),
                    type=event.type,
                    actor_id=event.metadata.actor_id,
                    # (the buyer's card is not the seller's to read)
                    data=json_ready({k: v for k, v in event.data.items() if k != "payment_method"}),
                    at=event.recorded_at,
                )
            )
        conn.execute(hourly_due.delete().where(hourly_due.c.contract_id == contract_id))
        due = next_hourly_due(state)
        if due is not None:
            conn.execute(hourly_due.insert().values(contract_id=contract_id, due_at=due))
        conn.execute(milestones.delete().where(milestones.c.contract_id == contract_id))
        if state.status == "active" and state.milestones:
            conn.execute(
                milestones.insert(),
                [
                    {
                        "contract_id": contract_id,
                        "milestone_id": m.milestone_id,
                        "status": m.status,
                        "due_date": m.due_date,
                        "review_due_at": m.review_due_at if m.status == "submitted" else None,
                    }
                    for m in state.milestones.values()
                ],
            )


def load_state(conn: Connection, contract_id: str) -> Contract:
    stored = conn.execute(
        sa.select(contracts.c.state).where(contracts.c.contract_id == contract_id)
    ).scalar_one_or_none()
    if stored is None:
        raise NotFound("no such contract")
    return state_from_json(stored)


def get_contract(conn: Connection, contract_id: str, today: date) -> dict[str, Any]:
    return document(load_state(conn, contract_id), today)


def list_versions(conn: Connection, contract_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(offer_versions)
        .where(offer_versions.c.contract_id == contract_id)
        .order_by(offer_versions.c.version)
    ).all()
    return [
        {
            "version": r.version,
            "terms": r.terms,
            "sent_at": json_ready(r.sent_at),
            "expires_at": json_ready(r.expires_at),
            "answers": r.answers,
        }
        for r in rows
    ]


def list_history(conn: Connection, contract_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(history).where(history.c.contract_id == contract_id).order_by(history.c.position)
    ).all()
    return [
        {
            "type": r.type,
            "milestone_id": r.milestone_id,
            "actor_id": r.actor_id,
            "data": r.data,
            "at": json_ready(r.at),
        }
        for r in rows
    ]


def list_for_user(conn: Connection, user_id: str, today: date) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(contracts.c.state)
        .where(sa.or_(contracts.c.buyer_id == user_id, contracts.c.seller_id == user_id))
        .order_by(contracts.c.updated_at.desc())
    ).all()
    return [document(state_from_json(r.state), today) for r in rows]


def next_hourly_due(state: Contract) -> datetime | None:
    h = state.hourly
    if h is None or state.status != "active":
        return None
    times = [
        i.review_due_at
        for i in h.invoices.values()
        if i.status == "in_review" and i.review_due_at is not None
    ]
    if h.ended_week is None:
        times.append(hourly_rules.closes_at(h, hourly_rules.next_week_to_close(h)))
    return min(times, default=None)


def due_hourly(conn: Connection, now: datetime, limit: int = 500) -> list[str]:
    """Hourly contracts with a week to close or an invoice to approve."""
    rows = conn.execute(
        sa.select(hourly_due.c.contract_id).where(hourly_due.c.due_at <= aware(now)).limit(limit)
    ).all()
    return [r.contract_id for r in rows]


def offers_to_expire(conn: Connection, now: datetime, limit: int = 500) -> list[str]:
    """Offers waiting for an answer past their expiry (``domain.expire_offer`` decides)."""
    c = contracts.c
    rows = conn.execute(
        sa.select(c.contract_id).where(c.offer_expires_at <= aware(now)).limit(limit)
    ).all()
    return [r.contract_id for r in rows]


def due_for_review(conn: Connection, now: datetime, limit: int = 500) -> list[str]:
    """Contracts with a submitted milestone whose review period ran out."""
    rows = conn.execute(
        sa.select(milestones.c.contract_id)
        .where(milestones.c.status == "submitted", milestones.c.review_due_at <= aware(now))
        .distinct()
        .limit(limit)
    ).all()
    return [r.contract_id for r in rows]


def due_for_reminders(
    conn: Connection, now: datetime, due_hours: float, approval_hours: float, limit: int = 500
) -> list[str]:
    """Contracts that may have a reminder due (``domain.reminders`` decides): a
    funded or sent-back milestone due by the end of tomorrow's window, or a
    submission approved automatically within ``approval_hours``. A contract
    whose reminders are recorded stays a candidate until its milestone moves on,
    so the rule, not this query, makes each reminder once."""
    m = milestones.c
    due_by = (aware(now) + timedelta(hours=due_hours)).date()
    rows = conn.execute(
        sa.select(m.contract_id)
        .where(
            sa.or_(
                sa.and_(m.status.in_(("funded", "changes_requested")), m.due_date <= due_by),
                sa.and_(
                    m.status == "submitted",
                    m.review_due_at <= aware(now) + timedelta(hours=approval_hours),
                ),
            )
        )
        .distinct()
        .limit(limit)
    ).all()
    return [r.contract_id for r in rows]


# -- the administrators' desk ----------------------------------------------------------

_DISPUTE_OPENS = {"MilestoneDisputed", "InvoiceDisputed"}
_DISPUTE_CLOSES = {"DisputeResolved", "InvoiceDisputeResolved"}


def open_disputes(
    conn: Connection, now: datetime, contract_id: str | None = None
) -> list[dict[str, Any]]:
    """Every dispute waiting for an administrator (of one contract, if given),
    oldest first: the contract, the milestone or week, the amount held (or
    invoiced), who opened it, why, when, and how long ago (seconds)."""
    h = history.c
    query = sa.select(h.contract_id, h.milestone_id, h.type, h.data, h.at).where(
        h.type.in_(_DISPUTE_OPENS | _DISPUTE_CLOSES)
    )
    if contract_id is not None:
        query = query.where(h.contract_id == contract_id)
    rows = conn.execute(query.order_by(h.position)).all()
    waiting: dict[tuple[str, str], Any] = {}
    for r in rows:
        key = (r.contract_id, r.milestone_id or f"week:{r.data.get('week')}")
        if r.type in _DISPUTE_OPENS:
            waiting[key] = r
        else:
            waiting.pop(key, None)
    disputes = []
    for (disputed_id, _), r in sorted(waiting.items(), key=lambda kv: kv[1].at):
        state = load_state(conn, disputed_id)
        if r.milestone_id:
            milestone = state.milestones.get(r.milestone_id)
            amount = milestone.amount if milestone else 0
            subject = {"kind": "milestone", "milestone_id": r.milestone_id, "week": None}
        else:
            invoices = state.hourly.invoices.values() if state.hourly else ()
            invoice = next((i for i in invoices if i.invoice_id == r.data["invoice_id"]), None)
            amount = invoice.amount if invoice else 0
            subject = {"kind": "week", "milestone_id": None, "week": r.data["week"]}
        opened_at = aware(r.at)
        disputes.append(
            {
                "contract_id": disputed_id,
                **subject,
                "buyer_id": state.buyer_id,
                "seller_id": state.seller_id,
                "amount": amount,
                "currency": state.currency,
                "opened_by": r.data["opened_by"],
                "reason": r.data["reason"],
                "opened_at": opened_at.isoformat(),
                "age_seconds": int((now - opened_at).total_seconds()),
            }
        )
    return disputes


def case_files(conn: Connection, contract_id: str) -> list[str]:
    """The files of a contract's history: what the seller delivered."""
    rows = conn.execute(
        sa.select(history.c.data).where(
            history.c.contract_id == contract_id, history.c.type == "WorkSubmitted"
        )
    ).all()
    return list(dict.fromkeys(str(f) for r in rows for f in r.data.get("file_ids", [])))
