"""A contract's rules, from the first offer to its end, as pure functions.

One stream per contract, ``contract-<id>``. It begins as an offer: the buyer
sends terms, the seller accepts, declines or asks for changes, and every
revision is a new offer version. Accepting starts the contract. Each milestone
then goes pending -> funded -> submitted -> (changes_requested -> submitted)*
-> approved -> paid; or, once disputed, -> resolved -> settled; or is removed
by mutual agreement while still pending.

Auto-approval is decided from the log alone: a submission records its review
deadline, so any process, after any restart or replay, finds the same
milestones due.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from services.contracts import hourly as H
from services.contracts.contract import (  # the state the rules decide on
    DEFAULT_REVIEW_DAYS as DEFAULT_REVIEW_DAYS,
)
from services.contracts.contract import FINISHED, MONEY_HELD, OPEN_OFFER, reminder_key
from services.contracts.contract import Contract as Contract
from services.contracts.contract import Milestone as Milestone
from services.contracts.contract import evolve as evolve
from services.contracts.contract import overdue_milestones as overdue_milestones
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.schemas import EventView

EventSpec = tuple[str, dict[str, Any]]


# -- offers ------------------------------------------------------------------------


def check_terms(terms: dict[str, Any], today: date) -> dict[str, Any]:
    """At least one milestone, each with a positive amount, a future due date
    and a revision limit of 0-10; milestone ids unique. An hourly offer has no
    milestones, and its own terms (``hourly.check_terms``)."""
    milestones = terms.get("milestones") or []
    if terms.get("hourly"):
        if milestones:
            raise InvalidInput(
                "an hourly offer has no milestones",
                {"fields": {"milestones": ["Leave empty for an hourly offer."]}},
            )
        H.check_terms(terms["hourly"], today)
        return terms
    if not milestones:
        raise InvalidInput(
            "an offer needs at least one milestone", {"fields": {"milestones": ["Add one."]}}
        )
    ids = [m["milestone_id"] for m in milestones]
    if len(set(ids)) != len(ids):
        raise InvalidInput(
            "milestone ids must be unique", {"fields": {"milestones": ["Duplicate id."]}}
        )
    for m in milestones:
        if m["amount"] <= 0 or m["due_date"] <= today or not 0 <= m.get("revision_limit", 2) <= 10:
            raise InvalidInput(
                f"milestone {m['title']!r} needs an amount above zero, a future due date "
                "and a revision limit between 0 and 10",
                {"fields": {"milestones": [m["milestone_id"]]}},
            )
    return terms


def _offered(terms: dict[str, Any], today: date) -> dict[str, Any]:
    """:func:`check_terms` for an offer's body, whose terms sit under ``terms``:
    the fields a refusal names are named where the client sent them."""
    try:
        return check_terms(terms, today)
    except InvalidInput as exc:
        fields = exc.details.get("fields")
        if fields is None:
            raise
        raise InvalidInput(exc.message, {**exc.details, "fields": {"terms": fields}}) from None


def send_offer(
    state: Contract,
    contract_id: str,
    proposal: dict[str, Any],
    actor: str,
    terms: dict[str, Any],
    review_seconds: int,
    today: date,
    expires_at: datetime | None = None,
) -> list[EventSpec]:
    """``proposal``: the proposal offered on (its project, buyer and seller);
    ``expires_at``: when the offer lapses unanswered (None: never)."""
    if state.exists:
        raise Conflict("this offer exists already")
    if proposal["buyer_id"] != actor:
        raise Forbidden("only the project's buyer may send an offer")
    if proposal["status"] != "submitted":
        raise Conflict(f"the proposal is {proposal['status']}", {"reason": "proposal_not_open"})
    return [
        (
            "OfferSent",
            {
                "contract_id": contract_id,
                "project_id": proposal["project_id"],
                "proposal_id": proposal["proposal_id"],
                "buyer_id": proposal["buyer_id"],
                "seller_id": proposal["seller_id"],
                "review_seconds": review_seconds,
                "terms": _offered(terms, today),
                "expires_at": expires_at,
            },
        )
    ]


def _not_expired(state: Contract, now: datetime) -> None:
    """An offer past its expiry is answered no more, even before the clock
    records ``OfferExpired``."""
    lapsed = state.offer_expires_at is not None and now >= state.offer_expires_at
    if state.status == "expired" or (state.status == "offered" and lapsed):
        expired_at = state.offer_expires_at.isoformat() if state.offer_expires_at else None
        raise Conflict("the offer expired", {"reason": "offer_expired", "expired_at": expired_at})


def _require(state: Contract, actor: str, role: str, statuses: tuple[str, ...]) -> None:
    if not state.exists:
        raise NotFound("no such contract")
    party = state.buyer_id if role == "buyer" else state.seller_id
    if actor != party:
        raise Forbidden(f"only the contract's {role} may do this")
    if state.status not in statuses:
        raise Conflict(
            f"the contract is {state.status}", {"reason": "wrong_state", "state": state.status}
        )


def request_offer_changes(
    state: Contract, actor: str, message: str, now: datetime
) -> list[EventSpec]:
    _require(state, actor, "seller", ("offered", "expired"))
    _not_expired(state, now)
    return [("OfferChangesRequested", {"version": state.offer_version, "message": message})]


def revise_offer(
    state: Contract,
    actor: str,
    terms: dict[str, Any],
    today: date,
    expires_at: datetime | None = None,
) -> list[EventSpec]:
    """A new version, with a new expiry: an expired offer can be sent again so."""
    _require(state, actor, "buyer", (*OPEN_OFFER, "expired"))
    return [
        (
            "OfferRevised",
            {
                "version": state.offer_version + 1,
                "terms": _offered(terms, today),
                "expires_at": expires_at,
            },
        )
    ]


def decline_offer(state: Contract, actor: str, reason: str) -> list[EventSpec]:
    _require(state, actor, "seller", OPEN_OFFER)
    return [("OfferDeclined", {"version": state.offer_version, "reason": reason})]


def withdraw_offer(state: Contract, actor: str, reason: str) -> list[EventSpec]:
    """The buyer takes back an offer not accepted yet (expired ones too: it
    then cannot be sent again)."""
    _require(state, actor, "buyer", (*OPEN_OFFER, "expired"))
    return [("OfferWithdrawn", {"version": state.offer_version, "reason": reason})]


def expire_offer(state: Contract, now: datetime) -> list[EventSpec]:
    """The clock: an offer the seller left unanswered past its expiry lapses
    (once). One the seller asked to change waits for the buyer, and does not."""
    if state.status != "offered" or state.offer_expires_at is None:
        return []
    if now < state.offer_expires_at:
        return []
    return [
        ("OfferExpired", {"version": state.offer_version, "expires_at": state.offer_expires_at})
    ]


def accept_offer(state: Contract, actor: str, version: int, now: datetime) -> list[EventSpec]:
    """The seller accepts the version they saw, before it expires; a newer one
    must be read first."""
    _require(state, actor, "seller", ("offered", "expired"))
    _not_expired(state, now)
    if version != state.offer_version:
        raise Conflict(
            "the offer changed since you read it",
            {"reason": "stale_offer", "current_version": state.offer_version},
        )
    return [
        (
            "ContractStarted",
            {
                "contract_id": state.contract_id,
                "project_id": state.project_id,
                "proposal_id": state.proposal_id,
                "buyer_id": state.buyer_id,
                "seller_id": state.seller_id,
                "offer_version": version,
            },
        )
    ]


# -- milestones --------------------------------------------------------------------


def _milestone(state: Contract, milestone_id: str) -> Milestone:
    if milestone_id not in state.milestones:
        raise NotFound("no such milestone")
    return state.milestones[milestone_id]


def _in(m: Milestone, *statuses: str) -> None:
    if m.status not in statuses:
        raise Conflict(f"the milestone is {m.status}", {"reason": "wrong_state", "state": m.status})


def _party(state: Contract, actor: str) -> str:
    if not state.exists:
        raise NotFound("no such contract")
    if actor == state.buyer_id:
        return "buyer"
    if actor == state.seller_id:
        return "seller"
    raise Forbidden("only the contract's parties may do this")


def mark_funded(state: Contract, milestone_id: str, amount: int, charge_id: str) -> list[EventSpec]:
    """Escrow holds the money. Recorded once: a redelivered notice changes nothing.
    (A milestone removed while its charge ran is refunded by escrow.) An
    hourly invoice's charge is recorded when it is released (``mark_paid``)."""
    if state.hourly is not None:
        return []
    m = _milestone(state, milestone_id)
    if m.status != "pending" or state.status != "active":
        return []
    return [
        (
            "MilestoneFunded",
            {"milestone_id": milestone_id, "amount": amount, "charge_id": charge_id},
        )
    ]


def submit_work(
    state: Contract,
    actor: str,
    milestone_id: str,
    note: str,
    file_ids: list[str],
    now: datetime,
) -> list[EventSpec]:
    _require(state, actor, "seller", ("active",))
    m = _milestone(state, milestone_id)
    if m.status == "pending":
        raise Conflict(
            "the buyer has not funded this milestone yet: work on it starts once it is funded",
            {"reason": "not_funded"},
        )
    _in(m, "funded", "changes_requested")
    return [
        (
            "WorkSubmitted",
            {
                "milestone_id": milestone_id,
                "buyer_id": state.buyer_id,
                "submission": m.submissions + 1,
                "note": note,
                "file_ids": file_ids,
                "review_due_at": now + timedelta(seconds=state.review_seconds),
            },
        )
    ]


def request_changes(state: Contract, actor: str, milestone_id: str, reason: str) -> list[EventSpec]:
    _require(state, actor, "buyer", ("active",))
    m = _milestone(state, milestone_id)
    _in(m, "submitted")
    if not reason.strip():
        raise InvalidInput("say what should change", {"fields": {"reason": ["Required."]}})
    if m.revisions_used >= m.revision_limit:
        raise Conflict(
            "the milestone's revision limit is used up: approve it or open a dispute",
            {"reason": "revision_limit", "limit": m.revision_limit},
        )
    return [
        (
            "ChangesRequested",
            {"milestone_id": milestone_id, "revision": m.revisions_used + 1, "reason": reason},
        )
    ]


def _approved(state: Contract, m: Milestone, automatic: bool) -> EventSpec:
    return (
        "MilestoneApproved",
        {
            "milestone_id": m.milestone_id,
            "automatic": automatic,
            "amount": m.amount,
            "currency": state.currency,
            "seller_id": state.seller_id,
        },
    )


def approve(state: Contract, actor: str, milestone_id: str) -> list[EventSpec]:
    _require(state, actor, "buyer", ("active",))
    m = _milestone(state, milestone_id)
    _in(m, "submitted")
    return [_approved(state, m, automatic=False)]


def auto_approvals(state: Contract, now: datetime) -> list[EventSpec]:
    """Submitted milestones whose review period ran out without an answer."""
    if state.status != "active":
        return []
    return [
        _approved(state, m, automatic=True)
        for m in state.milestones.values()
        if m.status == "submitted" and m.review_due_at is not None and m.review_due_at <= now
    ]


# -- reminders ---------------------------------------------------------------------


def due_at(due_date: date) -> datetime:
    """A milestone is due by the end of its due date (UTC): overdue the day after,
    as ``overdue_milestones`` counts it."""
    return datetime.combine(due_date + timedelta(days=1), time.min, UTC)


def reminders(
    state: Contract, now: datetime, due_hours: float, approval_hours: float
) -> list[EventSpec]:
    """The reminders due at ``now`` and not yet recorded: a funded milestone due
    within ``due_hours`` (MilestoneDueSoon); a funded or sent-back milestone past
    its due date (MilestoneOverdue); a submission approved automatically within
    ``approval_hours`` (ApprovalDueSoon, at the ``review_due_at`` that
    ``auto_approvals`` acts on). Unfunded milestones remind nobody: no work is
    owed on them yet. Decided from the log alone, so a restart or replay finds
    the same reminders recorded already."""
    if state.status != "active":
        return []
    found: list[EventSpec] = []
    parties = {"buyer_id": state.buyer_id, "seller_id": state.seller_id}
    for m in state.milestones.values():
        deadline = due_at(m.due_date)
        if m.status == "funded" and deadline - timedelta(hours=due_hours) <= now < deadline:
            spec = (
                "MilestoneDueSoon",
                {"milestone_id": m.milestone_id, "due_date": m.due_date, **parties},
            )
            found.append(spec)
        if m.status in ("funded", "changes_requested") and deadline <= now:
            spec = (
                "MilestoneOverdue",
                {"milestone_id": m.milestone_id, "due_date": m.due_date, **parties},
            )
            found.append(spec)
        review_due = m.review_due_at
        if (
            m.status == "submitted"
            and review_due is not None
            and review_due - timedelta(hours=approval_hours) <= now < review_due
        ):
            data = {
                "milestone_id": m.milestone_id,
                "submission": m.submissions,
                "approves_at": review_due,
                "hours": max(1, round((review_due - now).total_seconds() / 3600)),
                **parties,
            }
            found.append(("ApprovalDueSoon", data))
    return [
        (kind, data)
        for kind, data in found
        if reminder_key(kind, data["milestone_id"], data.get("due_date") or data.get("submission"))
        not in state.reminders
    ]


def report_progress(state: Contract, actor: str, milestone_id: str, note: str) -> list[EventSpec]:
    _require(state, actor, "seller", ("active",))
    m = _milestone(state, milestone_id)
    _in(m, "pending", "funded", "submitted", "changes_requested")
    return [("ProgressReported", {"milestone_id": milestone_id, "note": note})]


def mark_paid(state: Contract, milestone_id: str, amount: int, fee: int) -> list[EventSpec]:
    if state.hourly is not None:
        return _with_completion(state, H.mark_paid(state.hourly, milestone_id, amount, fee))
    m = _milestone(state, milestone_id)
    if m.status != "approved":
        return []  # paid already (a redelivery)
    paid = {milestone_id: replace(m, status="paid", paid_amount=amount)}
    return [
        ("MilestonePaid", {"milestone_id": milestone_id, "amount": amount, "fee": fee}),
        *completion(state, paid),
    ]


# -- disputes -------------------------------------------------------------------------


def open_dispute(state: Contract, actor: str, milestone_id: str, reason: str) -> list[EventSpec]:
    """Either party, while escrow holds the money and nothing is decided."""
    _party(state, actor)
    if state.status != "active":
        raise Conflict(f"the contract is {state.status}", {"reason": "wrong_state"})
    m = _milestone(state, milestone_id)
    _in(m, *MONEY_HELD)
    return [
        ("MilestoneDisputed", {"milestone_id": milestone_id, "opened_by": actor, "reason": reason})
    ]


def _not_a_party(state: Contract, admin_id: str) -> None:
    if admin_id in (state.buyer_id, state.seller_id):
        raise Forbidden(
            "an administrator does not decide a dispute on their own contract",
            {"reason": "own_contract"},
        )


def has_open_dispute(state: Contract) -> bool:
    """A milestone or a week waits for an administrator."""
    if any(m.status == "disputed" for m in state.milestones.values()):
        return True
    return state.hourly is not None and any(
        i.status == "disputed" for i in state.hourly.invoices.values()
    )


def read_case(state: Contract, admin_id: str, part: str) -> list[EventSpec]:
    """An administrator reads a disputed contract's case: recorded, always (the
    caller checks the role); only while a dispute waits, and never one's own."""
    if not state.exists:
        raise NotFound("no such contract")
    _not_a_party(state, admin_id)
    if not has_open_dispute(state):
        raise Conflict("the contract has no open dispute", {"reason": "no_open_dispute"})
    return [
        ("DisputeCaseRead", {"contract_id": state.contract_id, "admin_id": admin_id, "part": part})
    ]


def resolve_dispute(
    state: Contract, admin_id: str, milestone_id: str, to_seller: int, note: str
) -> list[EventSpec]:
    """An administrator splits the milestone's amount (the caller checks the role)."""
    if not state.exists:
        raise NotFound("no such contract")
    _not_a_party(state, admin_id)
    m = _milestone(state, milestone_id)
    _in(m, "disputed")
    if isinstance(to_seller, bool) or not 0 <= to_seller <= m.amount:
        raise InvalidInput(
            "the seller's share must be between 0 and the milestone's amount",
            {"fields": {"to_seller": [f"Between 0 and {m.amount}."]}},
        )
    return [
        (
            "DisputeResolved",
            {
                "milestone_id": milestone_id,
                "to_seller": to_seller,
                "resolved_by": admin_id,
                "note": note,
            },
        )
    ]


def mark_settled(
    state: Contract, milestone_id: str, to_seller: int, fee: int, refunded: int
) -> list[EventSpec]:
    m = _milestone(state, milestone_id)
    if m.status != "resolved":
        return []
    settled = {milestone_id: replace(m, status="settled", paid_amount=to_seller)}
    return [
        (
            "MilestoneSettled",
            {
                "milestone_id": milestone_id,
                "to_seller": to_seller,
                "fee": fee,
                "refunded": refunded,
            },
        ),
        *completion(state, settled),
    ]


# -- changes by mutual agreement --------------------------------------------------------


def propose_change(
    state: Contract, actor: str, change_id: str, change: dict[str, Any], today: date
) -> list[EventSpec]:
    """Add a milestone, or edit or remove one nobody has funded yet."""
    _party(state, actor)
    if state.status != "active":
        raise Conflict(f"the contract is {state.status}", {"reason": "wrong_state"})
    _no_milestones_when_hourly(state)
    _check_change(state, change, today)
    return [
        (
            "MilestoneChangeProposed",
            {"change_id": change_id, "proposed_by": actor, "change": change},
        )
    ]


def _no_milestones_when_hourly(state: Contract) -> None:
    """An hourly contract is paid by the week: a milestone added to it could be
    funded and never released."""
    if state.hourly is not None:
        raise Conflict(
            "an hourly contract has no milestones: change its weekly limit instead",
            {"reason": "hourly_contract"},
        )


def _check_change(state: Contract, change: dict[str, Any], today: date) -> None:
    action, mid = change["action"], change["milestone_id"]
    if action == "add":
        if mid in state.milestones:
            raise Conflict("this milestone exists already", {"reason": "exists"})
    else:
        m = _milestone(state, mid)
        if m.status != "pending":
            raise Conflict(
                "only a milestone nobody has funded yet can be changed or removed",
                {"reason": "wrong_state", "state": m.status},
            )
    if action in ("add", "edit"):
        check_terms({"milestones": [change["milestone"]]}, today)
    elif all(m.status == "removed" for k, m in state.milestones.items() if k != mid):
        raise Conflict(
            "a contract keeps at least one milestone: cancel it instead",
            {"reason": "last_milestone"},
        )


def respond_to_change(
    state: Contract, actor: str, change_id: str, accept: bool, today: date
) -> list[EventSpec]:
    """The party who did not propose it agrees or refuses."""
    _party(state, actor)
    proposal = state.pending_changes.get(change_id)
    if proposal is None:
        raise NotFound("no such pending change")
    if proposal["proposed_by"] == actor:
        raise Forbidden("the other party answers your proposal")
    if not accept:
        return [("MilestoneChangeRejected", {"change_id": change_id})]
    _no_milestones_when_hourly(state)
    if state.status != "active":
        raise Conflict(f"the contract is {state.status}", {"reason": "wrong_state"})
    change = proposal["change"]
    _check_change(state, change, today)
    events: list[EventSpec] = [
        ("MilestoneChangeAccepted", {"change_id": change_id, "change": change})
    ]
    if change["action"] == "remove":
        removed = replace(state.milestones[change["milestone_id"]], status="removed")
        events += completion(state, {removed.milestone_id: removed})
    return events


# -- the end ----------------------------------------------------------------------------


def _outcome(state: Contract, milestones: dict[str, Milestone]) -> dict[str, Any]:
    kept = [m for m in milestones.values() if m.status != "removed"]
    late = [
        m.milestone_id
        for m in kept
        if m.delivered_at is not None and m.delivered_at.date() > m.due_date
    ]
    return {
        "contract_id": state.contract_id,
        "buyer_id": state.buyer_id,
        "seller_id": state.seller_id,
        "currency": state.currency,
        "total_amount": sum(m.amount for m in kept),
        "total_paid": sum(m.paid_amount for m in kept),
        "on_time": not late,
        "late_milestones": late,
    }


def completion(state: Contract, changed: dict[str, Milestone]) -> list[EventSpec]:
    """The contract ends as completed once every milestone is paid, settled or removed."""
    milestones = {**state.milestones, **changed}
    if state.status != "active" or not all(m.status in FINISHED for m in milestones.values()):
        return []
    return [("ContractCompleted", _outcome(state, milestones))]


def _cancelled(state: Contract, actor: str, reason: str, by_agreement: bool) -> EventSpec:
    refund = [m.milestone_id for m in state.milestones.values() if m.status in MONEY_HELD]
    return (
        "ContractCancelled",
        {
            **_outcome(state, state.milestones),
            "reason": reason,
            "by_agreement": by_agreement,
            "cancelled_by": actor,
            "refund_milestone_ids": refund,
        },
    )


def cancel_refused_award(state: Contract) -> list[EventSpec]:
    """The project refused this contract's award (it had closed, or was
    awarded to another), or the proposal its hire (withdrawn or declined),
    while the offer was being accepted: the contract ends, and whatever was
    funded meanwhile goes back to the buyer."""
    if state.status != "active":
        return []
    reason = "the project or the proposal was no longer open when the offer was accepted"
    return [_cancelled(state, "system:contracts", reason, by_agreement=False)]


def propose_cancellation(state: Contract, actor: str, reason: str) -> list[EventSpec]:
    """Ends at once if the buyer cancels before anything was funded; otherwise
    the other party must agree. Never while a dispute or an approval is open."""
    role = _party(state, actor)
    if state.status != "active":
        raise Conflict(f"the contract is {state.status}", {"reason": "wrong_state"})
    if state.hourly is not None:
        raise Conflict(
            "an hourly contract is ended, not cancelled: its last week is billed",
            {"reason": "hourly_contract"},
        )
    busy = [
        m.milestone_id
        for m in state.milestones.values()
        if m.status in ("disputed", "resolved", "approved")
    ]
    if busy:
        raise Conflict(
            "a milestone is being paid or disputed: wait for it to settle",
            {"reason": "milestone_in_progress", "milestones": busy},
        )
    if role == "buyer" and all(
        m.status in ("pending", "removed") for m in state.milestones.values()
    ):
        return [_cancelled(state, actor, reason, by_agreement=False)]
    if state.cancellation is not None:
        raise Conflict("a cancellation is already proposed", {"reason": "pending"})
    return [("CancellationProposed", {"proposed_by": actor, "reason": reason})]


def respond_to_cancellation(state: Contract, actor: str, accept: bool) -> list[EventSpec]:
    _party(state, actor)
    if state.cancellation is None:
        raise NotFound("no cancellation is proposed")
    if state.cancellation["proposed_by"] == actor:
        raise Forbidden("the other party answers your proposal")
    if not accept:
        return [("CancellationRejected", {"rejected_by": actor})]
    busy = [
        m.milestone_id
        for m in state.milestones.values()
        if m.status in ("disputed", "resolved", "approved")
    ]
    if busy:
        raise Conflict(
            "a milestone is being paid or disputed: wait for it to settle",
            {"reason": "milestone_in_progress", "milestones": busy},
        )
    return [_cancelled(state, actor, state.cancellation["reason"], by_agreement=True)]


# -- hourly contracts ---------------------------------------------------------------


def _hourly(state: Contract, actor: str | None, role: str | None) -> H.Hourly:
    """The running hourly contract; ``role``: the party who may act (None: either)."""
    if not state.exists:
        raise NotFound("no such contract")
    if actor is not None:
        found = _party(state, actor)
        if role is not None and found != role:
            raise Forbidden(f"only the contract's {role} may do this")
    if state.hourly is None:
        raise Conflict("this is not an hourly contract", {"reason": "not_hourly"})
    if state.status != "active":
        raise Conflict(
            f"the contract is {state.status}", {"reason": "wrong_state", "state": state.status}
        )
    return state.hourly


def _open(h: H.Hourly) -> None:
    if h.ended_week is not None:
        raise Conflict("the contract has ended", {"reason": "ended"})


def record_time(
    state: Contract, actor: str, day: date, minutes: int, memo: str, today: date
) -> list[EventSpec]:
    h = _hourly(state, actor, "seller")
    _open(h)
    return H.record_time(h, day, minutes, memo, today)


def close_hourly_weeks(state: Contract, now: datetime) -> list[EventSpec]:
    """What the clock decides first: weeks that closed become invoices."""
    if state.hourly is None or state.status != "active":
        return []
    return H.close_weeks(state.hourly, state.contract_id, now, state.review_seconds)


def invoices_due(state: Contract, now: datetime) -> list[int]:
    """The weeks whose invoice's review period ran out undisputed."""
    if state.hourly is None or state.status != "active":
        return []
    return [
        int(data["week"])
        for _, data in H.auto_approvals(state.hourly, now, state.currency, state.seller_id)
    ]


def auto_approve_invoice(state: Contract, week: int, now: datetime) -> list[EventSpec]:
    """Then: the invoice of ``week``, if its review period ran out undisputed."""
    if state.hourly is None or state.status != "active":
        return []
    due = H.auto_approvals(state.hourly, now, state.currency, state.seller_id)
    return [(t, d) for t, d in due if d["week"] == week]


def approve_invoice(state: Contract, actor: str, week: int) -> list[EventSpec]:
    h = _hourly(state, actor, "buyer")
    return H.approve_invoice(h, week, state.currency, state.seller_id)


def dispute_invoice(state: Contract, actor: str, week: int, reason: str) -> list[EventSpec]:
    h = _hourly(state, actor, "buyer")
    return H.dispute_invoice(h, week, actor, reason)


def resolve_invoice_dispute(
    state: Contract, admin_id: str, week: int, to_seller: int, note: str
) -> list[EventSpec]:
    """An administrator's decision (the caller checks the role)."""
    _not_a_party(state, admin_id)
    h = _hourly(state, None, None)
    return _with_completion(state, H.resolve_dispute(h, week, admin_id, to_seller, note))


def invoice_charge_failed(
    state: Contract, invoice_id: str, attempt: int, reason: str
) -> list[EventSpec]:
    if state.hourly is None:
        return []
    return H.charge_failed(state.hourly, invoice_id, attempt, reason)


def retry_invoice_charge(
    state: Contract, actor: str, week: int, payment_method: str
) -> list[EventSpec]:
    h = _hourly(state, actor, "buyer")
    return H.retry_charge(h, week, payment_method)


def change_weekly_limit(state: Contract, actor: str, hours: int, today: date) -> list[EventSpec]:
    h = _hourly(state, actor, "buyer")
    _open(h)
    return H.change_limit(h, hours, today)


def pause_hourly(state: Contract, actor: str, paused: bool, today: date) -> list[EventSpec]:
    h = _hourly(state, actor, "buyer")
    _open(h)
    return H.pause(h, paused, today)


def end_hourly(state: Contract, actor: str, reason: str, now: datetime) -> list[EventSpec]:
    h = _hourly(state, actor, None)
    events = H.end(h, state.contract_id, actor, reason, now, state.review_seconds)
    return _with_completion(state, events, ended_by=actor, reason=reason)


def _with_completion(
    state: Contract, events: list[EventSpec], ended_by: str = "", reason: str = ""
) -> list[EventSpec]:
    """``events``, and the contract's end if after them every invoice of the
    ended contract needs nothing more: completed, or cancelled if it ended
    without a minute billed (as a fixed-price contract ended before anything
    was funded). It counts as on time unless a week was disputed."""
    if not events or state.hourly is None or state.status != "active":
        return events
    after = state.hourly
    for event_type, data in events:
        after = H.evolve(after, event_type, data)
    if not H.finished(after):
        return events
    billed, paid = H.totals(after)
    disputed = any(i.status == "settled" for i in after.invoices.values())  # only disputes settle
    outcome = {
        "contract_id": state.contract_id,
        "buyer_id": state.buyer_id,
        "seller_id": state.seller_id,
        "currency": state.currency,
        "total_amount": billed,
        "total_paid": paid,
        "on_time": not disputed,
        "late_milestones": [],
    }
    if billed == 0:
        cancelled = {
            **outcome,
            "reason": reason or "ended before any time was billed",
            "by_agreement": False,
            "cancelled_by": ended_by or "system:contracts",
            "refund_milestone_ids": [],
        }
        return [*events, ("ContractCancelled", cancelled)]
    return [*events, ("ContractCompleted", outcome)]


# -- what contracts learns from other services' events -----------------------------


PROPOSAL_FACTS = (
    "ProposalSubmitted",
    "ProposalWithdrawn",
    "ProposalDeclined",
    "ProposalHired",
    "ProposalNotSelected",
)
"""Bidding's published events that ``evolve_proposal`` folds."""
PROJECT_FACTS = (
    "ProjectPosted",
    "ProjectClosed",
    "ProjectCancelled",
    "ProjectExpired",
    "ProjectAwarded",
)
"""Projects' published events that ``evolve_project_status`` folds."""


def evolve_proposal(state: dict[str, Any], event: EventView) -> dict[str, Any]:
    """A proposal as bidding's events tell it (never bidding's tables)."""
    data = event.data
    match event.type:
        case "ProposalSubmitted":
            keys = ("proposal_id", "project_id", "buyer_id", "seller_id")
            return {**{k: data[k] for k in keys}, "status": "submitted"}
        case "ProposalWithdrawn":
            return {**state, "status": "withdrawn"}
        case "ProposalDeclined":
            return {**state, "status": "declined"}
        case "ProposalHired":
            return {**state, "status": "hired"}
        case "ProposalNotSelected":
            return {**state, "status": "not_selected"}
    return state


def evolve_project_status(state: str, event: EventView) -> str:
    """A project's status as projects' events tell it."""
    match event.type:
        case "ProjectPosted":
            return "open"
        case "ProjectClosed" | "ProjectCancelled" | "ProjectExpired" | "ProjectAwarded":
            status: str = event.type.removeprefix("Project").lower()
            return status
    return state
