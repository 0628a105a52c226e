"""Escrow's read model: ledger postings, balances, holds, charges, refunds,
payouts and each user's statement, all a projection of escrow's events.

Nothing here is written except by :class:`EscrowView`, so ``rebuild`` gives
exactly these tables (``marketplace-events verify escrow.escrow`` checks it).
Each posting row is one leg of a movement (``services.escrow.ledger``); the
legs of every event sum to zero, so ``SUM(amount)`` over all postings is zero.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.escrow import ledger as L
from shared.jsonready import json_ready
from shared.projection import Projection
from shared.schemas import PublishedEvent

metadata = sa.MetaData()

postings = sa.Table(
    "escrow_postings",
    metadata,
    sa.Column("position", sa.BigInteger, primary_key=True),
    sa.Column("leg", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("account", sa.String(140), nullable=False, index=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("contract_id", sa.String(64), index=True),
    sa.Column("milestone_id", sa.String(64)),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

balances = sa.Table(
    "escrow_balances",
    metadata,
    sa.Column("account", sa.String(140), primary_key=True),
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("balance", sa.BigInteger, nullable=False),
)

holds = sa.Table(
    "escrow_holds",
    metadata,
    sa.Column("contract_id", sa.String(64), primary_key=True),
    sa.Column("milestone_id", sa.String(64), primary_key=True),
    sa.Column("buyer_id", sa.String(64), nullable=False, index=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("funded", sa.BigInteger, nullable=False),
    sa.Column("released", sa.BigInteger, nullable=False),
    sa.Column("refunded", sa.BigInteger, nullable=False),
    sa.Column("disputed", sa.Boolean, nullable=False),
)

charges = sa.Table(
    "escrow_charges",
    metadata,
    sa.Column("charge_id", sa.String(64), primary_key=True),
    sa.Column("contract_id", sa.String(64), nullable=False),
    sa.Column("buyer_id", sa.String(64), nullable=False),
    sa.Column("milestone_ids", sa.JSON, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(12), nullable=False, index=True),
    sa.Column("reason", sa.String(60)),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("invoice_id", sa.String(64), index=True),
)

payouts = sa.Table(
    "escrow_payouts",
    metadata,
    sa.Column("payout_id", sa.String(64), primary_key=True),
    sa.Column("seller_id", sa.String(64), nullable=False, index=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(12), nullable=False, index=True),
    sa.Column("reference", sa.String(100)),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
)

refunds = sa.Table(
    "escrow_refunds",
    metadata,
    sa.Column("refund_id", sa.String(64), primary_key=True),
    sa.Column("contract_id", sa.String(64), nullable=False, index=True),
    sa.Column("milestone_id", sa.String(64), nullable=False),
    sa.Column("buyer_id", sa.String(64), nullable=False, index=True),
    sa.Column("charge_id", sa.String(64), nullable=False),
    sa.Column("charge_reference", sa.String(100), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("reason", sa.String(60), nullable=False),
    sa.Column("status", sa.String(12), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("reference", sa.String(100)),
    sa.Column("failure_reason", sa.String(60)),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    # When the current attempt was asked for, or its answer recorded.
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

statement_lines = sa.Table(
    "escrow_statement_lines",
    metadata,
    sa.Column("position", sa.BigInteger, primary_key=True),
    sa.Column("line", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("contract_id", sa.String(64), index=True),
    sa.Column("milestone_id", sa.String(64)),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    # A refund line: the refund whose state the statement shows.
    sa.Column("refund_id", sa.String(64)),
)


def _lines(event_type: str, d: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    """(user, kind, description, signed amount from that user's side)."""
    match event_type:
        case "EscrowFunded":
            return [(d["buyer_id"], "charge", "Milestone funded into escrow", -d["amount"])]
        case "EscrowReleased":
            return [
                (d["seller_id"], "release", "Milestone payment released", d["amount"]),
                (d["seller_id"], "fee", "Platform fee", -d["fee"]),
            ]
        case "EscrowRefunded":
            return [(d["buyer_id"], "refund", f"Refund: {d['reason']}", d["amount"])]
        case "EscrowDisputeSettled":
            lines = []
            if d["to_seller"]:
                lines += [
                    (d["seller_id"], "release", "Dispute settled: your share", d["to_seller"]),
                    (d["seller_id"], "fee", "Platform fee", -d["fee"]),
                ]
            if d["refunded"]:
                lines.append((d["buyer_id"], "refund", "Dispute settled: refund", d["refunded"]))
            return lines
        case "PayoutRequested":
            return [(d["seller_id"], "payout", "Payout to your bank", -d["amount"])]
    return []


def _refund_of(kind: str, d: dict[str, Any]) -> str | None:
    """The refund a refund line's money goes back by (its id is derived as
    the one ``RefundRequested`` in the same append carries)."""
    if kind != "refund":
        return None
    return L.refund_id(d["contract_id"], d["milestone_id"], d["cause"])


INVOICE_TEXT = {
    "charge": "Hourly week charged",
    "release": "Hourly week paid",
    "fee": "Platform fee",
}


def _invoice_lines(
    conn: Connection, d: dict[str, Any], lines: list[tuple[str, str, str, int]]
) -> list[tuple[str, str, str, int]]:
    """An hourly week's movements read as such (its invoice id stands as the milestone)."""
    invoice = conn.execute(
        sa.select(charges.c.charge_id).where(
            charges.c.contract_id == d["contract_id"], charges.c.invoice_id == d["milestone_id"]
        )
    ).first()
    if invoice is None:
        return lines
    return [(user, kind, INVOICE_TEXT.get(kind, text), n) for user, kind, text, n in lines]


def _upsert_balance(conn: Connection, account: str, currency: str, amount: int) -> None:
    where = sa.and_(balances.c.account == account, balances.c.currency == currency)
    updated = conn.execute(
        balances.update().where(where).values(balance=balances.c.balance + amount)
    )
    if updated.rowcount == 0:
        conn.execute(balances.insert().values(account=account, currency=currency, balance=amount))


class EscrowView(Projection):
    name = "escrow"
    version = 3
    metadata = metadata
    categories = ("escrow", "payouts")
    event_types = (
        "FundingRequested",
        "FundingFailed",
        "EscrowFunded",
        "EscrowReleased",
        "EscrowRefunded",
        "EscrowFrozen",
        "EscrowDisputeSettled",
        "PayoutRequested",
        "PayoutSent",
        "RefundRequested",
        "RefundSucceeded",
        "RefundFailed",
        "RefundRetried",
    )

    def apply(self, conn: Connection, event: PublishedEvent) -> None:
        d = event.data
        at, position = event.recorded_at, event.position
        if event.type == "FundingRequested":
            conn.execute(
                charges.insert().values(
                    charge_id=d["charge_id"],
                    contract_id=d["contract_id"],
                    buyer_id=d["buyer_id"],
                    milestone_ids=d["milestone_ids"],
                    amount=d["amount"],
                    currency=d["currency"],
                    status="requested",
                    requested_at=at,
                    invoice_id=d.get("invoice_id"),
                )
            )
        elif event.type == "FundingFailed":
            conn.execute(
                charges.update()
                .where(charges.c.charge_id == d["charge_id"])
                .values(status="failed", reason=d["reason"])
            )
        elif event.type == "PayoutRequested":
            conn.execute(
                payouts.insert().values(
                    payout_id=d["payout_id"],
                    seller_id=d["seller_id"],
                    amount=d["amount"],
                    currency=d["currency"],
                    status="requested",
                    requested_at=at,
                )
            )
        elif event.type == "PayoutSent":
            conn.execute(
                payouts.update()
                .where(payouts.c.payout_id == d["payout_id"])
                .values(status="sent", reference=d["reference"])
            )
        elif event.type.startswith("Refund"):
            self._refund(conn, event.type, d, at)
        moved = L.movement(event.type, d)
        if moved is None:
            return
        if event.type == "EscrowFunded":
            conn.execute(
                charges.update()
                .where(charges.c.charge_id == d["charge_id"])
                .values(status="succeeded")
            )
        legs = L.postings(moved)
        if legs:
            conn.execute(
                postings.insert(),
                [
                    {
                        "position": position,
                        "leg": i,
                        "event_id": str(event.event_id),
                        "kind": moved["kind"],
                        "account": account,
                        "amount": amount,
                        "currency": d["currency"],
                        "contract_id": d.get("contract_id"),
                        "milestone_id": d.get("milestone_id"),
                        "at": at,
                    }
                    for i, (account, amount) in enumerate(legs)
                ],
            )
            for account, amount in legs:
                _upsert_balance(conn, account, d["currency"], amount)
        self._hold(conn, event.type, d)
        lines = _lines(event.type, d)
        if lines and event.type in ("EscrowFunded", "EscrowReleased"):
            lines = _invoice_lines(conn, d, lines)
        if lines:
            conn.execute(
                statement_lines.insert(),
                [
                    {
                        "position": position,
                        "line": i,
                        "user_id": user,
                        "contract_id": d.get("contract_id"),
                        "milestone_id": d.get("milestone_id"),
                        "kind": kind,
                        "description": text,
                        "amount": amount,
                        "currency": d["currency"],
                        "at": at,
                        "refund_id": _refund_of(kind, d),
                    }
                    for i, (user, kind, text, amount) in enumerate(lines)
                ],
            )

    def _refund(self, conn: Connection, event_type: str, d: dict[str, Any], at: Any) -> None:
        if event_type == "RefundRequested":
            conn.execute(
                refunds.insert().values(
                    refund_id=d["refund_id"],
                    contract_id=d["contract_id"],
                    milestone_id=d["milestone_id"],
                    buyer_id=d["buyer_id"],
                    charge_id=d["charge_id"],
                    charge_reference=d["charge_reference"],
                    amount=d["amount"],
                    currency=d["currency"],
                    reason=d["reason"],
                    status="requested",
                    attempt=1,
                    requested_at=at,
                    updated_at=at,
                )
            )
            return
        values: dict[str, Any] = {"updated_at": at}
        if event_type == "RefundSucceeded":
            values |= {"status": "succeeded", "reference": d["reference"], "failure_reason": None}
        elif event_type == "RefundFailed":
            values |= {"status": "failed", "failure_reason": d["reason"]}
        elif event_type == "RefundRetried":
            values |= {"status": "requested", "attempt": d["attempt"]}
        else:
            return
        conn.execute(refunds.update().where(refunds.c.refund_id == d["refund_id"]).values(values))

    def _hold(self, conn: Connection, event_type: str, d: dict[str, Any]) -> None:
        if "milestone_id" not in d:
            return
        key = sa.and_(
            holds.c.contract_id == d["contract_id"], holds.c.milestone_id == d["milestone_id"]
        )
        if event_type == "EscrowFunded":
            conn.execute(
                holds.insert().values(
                    contract_id=d["contract_id"],
                    milestone_id=d["milestone_id"],
                    buyer_id=d["buyer_id"],
                    currency=d["currency"],
                    funded=d["amount"],
                    released=0,
                    refunded=0,
                    disputed=False,
                )
            )
        elif event_type == "EscrowReleased":
            conn.execute(holds.update().where(key).values(released=holds.c.released + d["amount"]))
        elif event_type == "EscrowRefunded":
            conn.execute(holds.update().where(key).values(refunded=holds.c.refunded + d["amount"]))
        elif event_type == "EscrowFrozen":
            conn.execute(holds.update().where(key).values(disputed=True))
        elif event_type == "EscrowDisputeSettled":
            conn.execute(
                holds.update()
                .where(key)
                .values(
                    released=holds.c.released + d["to_seller"],
                    refunded=holds.c.refunded + d["refunded"],
                    disputed=False,
                )
            )


# -- reads ---------------------------------------------------------------------------


def balance(conn: Connection, account: str, currency: str) -> int:
    value = conn.execute(
        sa.select(balances.c.balance).where(
            balances.c.account == account, balances.c.currency == currency
        )
    ).scalar_one_or_none()
    return int(value or 0)


def credited_to_seller(conn: Connection, seller_id: str, currency: str) -> int:
    """Everything releases gave the seller (net of fees), before payouts."""
    value = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(postings.c.amount), 0)).where(
            postings.c.account == L.seller_account(seller_id),
            postings.c.currency == currency,
            postings.c.kind != "paid_out",
        )
    ).scalar_one()
    return int(value)


def user_summary(conn: Connection, user_id: str) -> dict[str, Any]:
    """What a user has: available (seller), in escrow (as buyer), paid out, per currency."""
    available = conn.execute(
        sa.select(balances.c.currency, balances.c.balance).where(
            balances.c.account == L.seller_account(user_id)
        )
    ).all()
    held = conn.execute(
        sa.select(
            holds.c.currency,
            sa.func.sum(holds.c.funded - holds.c.released - holds.c.refunded).label("held"),
        )
        .where(holds.c.buyer_id == user_id)
        .group_by(holds.c.currency)
    ).all()
    paid = conn.execute(
        sa.select(payouts.c.currency, sa.func.sum(payouts.c.amount).label("paid"))
        .where(payouts.c.seller_id == user_id)
        .group_by(payouts.c.currency)
    ).all()
    currencies = sorted({r.currency for r in (*available, *held, *paid)})
    by = {
        "available": {r.currency: int(r.balance) for r in available},
        "in_escrow": {r.currency: int(r.held) for r in held},
        "paid_out": {r.currency: int(r.paid) for r in paid},
    }
    return {
        "balances": [{"currency": c, **{k: v.get(c, 0) for k, v in by.items()}} for c in currencies]
    }


def contract_escrow(conn: Connection, contract_id: str) -> dict[str, Any]:
    rows = conn.execute(
        sa.select(holds).where(holds.c.contract_id == contract_id).order_by(holds.c.milestone_id)
    ).all()
    return {
        "holds": [
            {
                "milestone_id": r.milestone_id,
                "currency": r.currency,
                "funded": r.funded,
                "released": r.released,
                "refunded": r.refunded,
                "held": r.funded - r.released - r.refunded,
                "disputed": r.disputed,
            }
            for r in rows
        ],
        "postings": [
            json_ready(
                {
                    "event_id": r.event_id,
                    "kind": r.kind,
                    "account": r.account,
                    "amount": r.amount,
                    "currency": r.currency,
                    "milestone_id": r.milestone_id,
                    "at": r.at,
                }
            )
            for r in conn.execute(
                sa.select(postings)
                .where(postings.c.contract_id == contract_id)
                .order_by(postings.c.position, postings.c.leg)
            ).all()
        ],
        "refunds": [
            json_ready(
                {
                    "refund_id": r.refund_id,
                    "milestone_id": r.milestone_id,
                    "amount": r.amount,
                    "currency": r.currency,
                    "reason": r.reason,
                    "status": r.status,
                    "attempts": r.attempt,
                    "charge_reference": r.charge_reference,
                    "reference": r.reference,
                    "failure_reason": r.failure_reason,
                    "requested_at": r.requested_at,
                }
            )
            for r in conn.execute(
                sa.select(refunds)
                .where(refunds.c.contract_id == contract_id)
                .order_by(refunds.c.requested_at, refunds.c.refund_id)
            ).all()
        ],
    }


def statement(
    conn: Connection, user_id: str, contract_id: str | None = None
) -> list[dict[str, Any]]:
    query = (
        sa.select(statement_lines, refunds.c.status.label("refund_status"))
        .outerjoin(refunds, refunds.c.refund_id == statement_lines.c.refund_id)
        .where(statement_lines.c.user_id == user_id)
    )
    if contract_id is not None:
        query = query.where(statement_lines.c.contract_id == contract_id)
    rows = conn.execute(query.order_by(statement_lines.c.position, statement_lines.c.line)).all()
    running: dict[str, int] = {}
    lines = []
    for r in rows:
        running[r.currency] = running.get(r.currency, 0) + r.amount
        lines.append(
            json_ready(
                {
                    "at": r.at,
                    "kind": r.kind,
                    "description": r.description,
                    "contract_id": r.contract_id,
                    "milestone_id": r.milestone_id,
                    "amount": r.amount,
                    "currency": r.currency,
                    "running_total": running[r.currency],
                    "refund_id": r.refund_id if r.refund_status else None,
                    "refund_status": r.refund_status,
                }
            )
        )
    return lines


CSV_COLUMNS = (
    "at",
    "kind",
    "description",
    "contract_id",
    "milestone_id",
    "amount",
    "currency",
    "running_total",
    "refund_status",
)


def statement_csv(lines: list[dict[str, Any]]) -> str:
    """Amounts stay integer minor units, as everywhere in the API."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for line in lines:
        writer.writerow({k: "" if line[k] is None else line[k] for k in CSV_COLUMNS})
    return out.getvalue()


def pending_charges(conn: Connection, older_than: Any) -> list[tuple[str, str]]:
    rows = conn.execute(
        sa.select(charges.c.contract_id, charges.c.charge_id).where(
            charges.c.status == "requested", charges.c.requested_at <= older_than
        )
    ).all()
    return [(r.contract_id, r.charge_id) for r in rows]


def pending_refunds(conn: Connection, older_than: Any) -> list[tuple[str, str]]:
    """Refunds asked for but with no recorded answer (a crash, a lost answer)."""
    rows = conn.execute(
        sa.select(refunds.c.contract_id, refunds.c.refund_id).where(
            refunds.c.status == "requested", refunds.c.updated_at <= older_than
        )
    ).all()
    return [(r.contract_id, r.refund_id) for r in rows]


def retryable_refunds(conn: Connection, older_than: Any, attempts: int) -> list[tuple[str, str]]:
    """Declined refunds that may be tried again: fewer than ``attempts`` made,
    the last one's answer recorded before ``older_than``."""
    rows = conn.execute(
        sa.select(refunds.c.contract_id, refunds.c.refund_id).where(
            refunds.c.status == "failed",
            refunds.c.attempt < attempts,
            refunds.c.updated_at <= older_than,
        )
    ).all()
    return [(r.contract_id, r.refund_id) for r in rows]


def unsent_payouts(conn: Connection, older_than: Any) -> list[tuple[str, str]]:
    rows = conn.execute(
        sa.select(payouts.c.seller_id, payouts.c.payout_id).where(
            payouts.c.status == "requested", payouts.c.requested_at <= older_than
        )
    ).all()
    return [(r.seller_id, r.payout_id) for r in rows]
