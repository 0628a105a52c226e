"""The contracts service's events: its published API.

Stream ``contract-<id>``: the offer and its versions, then the contract:
milestones funded, submitted, revised, approved (by the buyer or by the review
period running out), paid, disputed and settled; changes agreed by both
parties; and the end (completed or cancelled) with what reputation needs.
"""

from __future__ import annotations

from marshmallow import Schema, fields

from shared.schemas import ACTOR, ALL, registry

STREAM_CATEGORIES = ("contract", "casefile")
"""The categories of this service's streams: no other service reads them."""


@registry.event("ContractStarted", published=ALL)
class ContractStarted(Schema):
    """An offer was accepted: the project is awarded to the seller."""

    contract_id = fields.String(required=True)
    project_id = fields.String(required=True)
    proposal_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    offer_version = fields.Integer(load_default=1)


class OfferMilestone(Schema):
    milestone_id = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(load_default="")
    acceptance_criteria = fields.String(load_default="")
    amount = fields.Integer(required=True)
    due_date = fields.Date(required=True)
    revision_limit = fields.Integer(required=True)


class HourlyTerms(Schema):
    """An hourly offer's terms: ``rate`` minor units per hour, at most
    ``weekly_limit`` hours a week from ``start_date``; each closed week is
    charged to ``payment_method``."""

    rate = fields.Integer(required=True)
    weekly_limit = fields.Integer(required=True)
    start_date = fields.Date(required=True)
    payment_method = fields.String(required=True)


class OfferTerms(Schema):
    """``hourly``: the terms of an hourly offer (its ``milestones`` are then empty)."""

    currency = fields.String(required=True)
    scope = fields.String(required=True)
    payment_terms = fields.String(load_default="")
    milestones = fields.List(fields.Nested(OfferMilestone), required=True)
    hourly = fields.Nested(HourlyTerms, allow_none=True, load_default=None)


@registry.event("OfferSent", published=ALL)
class OfferSentV1(Schema):
    contract_id = fields.String(required=True)
    project_id = fields.String(required=True)
    proposal_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    review_days = fields.Integer(required=True)
    terms = fields.Nested(OfferTerms, required=True)


def _review_seconds(v1: dict) -> dict:
    data = {k: v for k, v in v1.items() if k != "review_days"}
    return {**data, "review_seconds": v1["review_days"] * 86_400}


@registry.event("OfferSent", version=2, upcast=_review_seconds, published=ALL)
class OfferSent(Schema):
    """v2: the review period in seconds, so an operator can set one shorter
    than a day (v1 stored whole days)."""

    contract_id = fields.String(required=True)
    project_id = fields.String(required=True)
    proposal_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    review_seconds = fields.Integer(required=True)
    terms = fields.Nested(OfferTerms, required=True)
    expires_at = fields.AwareDateTime(allow_none=True, load_default=None)
    """When this version lapses unanswered (absent from older offers: never)."""


@registry.event("OfferChangesRequested", published=ALL, personal={"message": ACTOR})
class OfferChangesRequested(Schema):
    version = fields.Integer(required=True)
    message = fields.String(required=True)


@registry.event("OfferRevised", published=ALL)
class OfferRevised(Schema):
    version = fields.Integer(required=True)
    terms = fields.Nested(OfferTerms, required=True)
    expires_at = fields.AwareDateTime(allow_none=True, load_default=None)


@registry.event("OfferDeclined", published=ALL, personal={"reason": ACTOR})
class OfferDeclined(Schema):
    version = fields.Integer(required=True)
    reason = fields.String(load_default="")


@registry.event("OfferWithdrawn", published=ALL, personal={"reason": ACTOR})
class OfferWithdrawn(Schema):
    """The buyer took back an offer the seller had not accepted."""

    version = fields.Integer(required=True)
    reason = fields.String(load_default="")


@registry.event("OfferExpired", published=ALL)
class OfferExpired(Schema):
    """The offer's version lapsed unanswered at ``expires_at``; the buyer may
    send a revised one."""

    version = fields.Integer(required=True)
    expires_at = fields.AwareDateTime(required=True)


# -- the contract's milestones -------------------------------------------------------


class MilestoneRef(Schema):
    milestone_id = fields.String(required=True)


@registry.event("MilestoneFunded", published=ALL)
class MilestoneFunded(MilestoneRef):
    """Escrow holds the milestone's amount (learned from escrow's EscrowFunded)."""

    amount = fields.Integer(required=True)
    charge_id = fields.String(required=True)


@registry.event("WorkSubmitted", published=ALL, personal={"note": ACTOR})
class WorkSubmitted(MilestoneRef):
    """``review_due_at``: when it is approved automatically unless the buyer answers.
    Recorded, not computed on reading, so a replay finds the same deadline."""

    buyer_id = fields.String(required=True)
    """Who may now read the attached files."""
    submission = fields.Integer(required=True)
    note = fields.String(required=True)
    file_ids = fields.List(fields.String(), load_default=list)
    review_due_at = fields.AwareDateTime(required=True)


@registry.event("ChangesRequested", published=ALL, personal={"reason": ACTOR})
class ChangesRequested(MilestoneRef):
    revision = fields.Integer(required=True)
    reason = fields.String(required=True)


@registry.event("MilestoneApproved", published=ALL)
class MilestoneApproved(MilestoneRef):
    """Escrow releases the milestone's money on this event."""

    automatic = fields.Boolean(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    seller_id = fields.String(required=True)


@registry.event("MilestonePaid", published=ALL)
class MilestonePaid(MilestoneRef):
    """Escrow released the money: ``amount`` gross, ``fee`` the platform's part."""

    amount = fields.Integer(required=True)
    fee = fields.Integer(required=True)


@registry.event("ProgressReported", published=ALL, personal={"note": ACTOR})
class ProgressReported(MilestoneRef):
    note = fields.String(required=True)


# -- reminders (each recorded once: the contract's state remembers them) -----------


class Reminder(MilestoneRef):
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)


@registry.event("MilestoneDueSoon", published=ALL)
class MilestoneDueSoon(Reminder):
    """A funded milestone is due within MILESTONE_DUE_REMINDER_HOURS (by the end of
    ``due_date``, UTC); once per milestone and due date."""

    due_date = fields.Date(required=True)


@registry.event("MilestoneOverdue", published=ALL)
class MilestoneOverdue(Reminder):
    """A funded milestone's due date passed with no work under review; once per
    milestone and due date."""

    due_date = fields.Date(required=True)


@registry.event("ApprovalDueSoon", published=ALL)
class ApprovalDueSoon(Reminder):
    """Submission ``submission`` is approved automatically at ``approves_at``
    (about ``hours`` from now) unless the buyer answers; once per submission."""

    submission = fields.Integer(required=True)
    approves_at = fields.AwareDateTime(required=True)
    hours = fields.Integer(required=True)


@registry.event("MilestoneDisputed", published=ALL, personal={"reason": "opened_by"})
class MilestoneDisputed(MilestoneRef):
    """Freezes the milestone's escrow until an administrator resolves it."""

    opened_by = fields.String(required=True)
    reason = fields.String(required=True)


@registry.event("DisputeResolved", published=ALL, personal={"note": "resolved_by"})
class DisputeResolved(MilestoneRef):
    """An administrator's split: ``to_seller`` released, the rest refunded."""

    to_seller = fields.Integer(required=True)
    resolved_by = fields.String(required=True)
    note = fields.String(load_default="")


@registry.event("MilestoneSettled", published=ALL)
class MilestoneSettled(MilestoneRef):
    """Escrow carried out a dispute's split."""

    to_seller = fields.Integer(required=True)
    fee = fields.Integer(required=True)
    refunded = fields.Integer(required=True)


class MilestoneChange(Schema):
    action = fields.String(required=True)  # add, edit or remove
    milestone_id = fields.String(required=True)
    milestone = fields.Nested(OfferMilestone, allow_none=True, load_default=None)


@registry.event("MilestoneChangeProposed", published=ALL)
class MilestoneChangeProposed(Schema):
    change_id = fields.String(required=True)
    proposed_by = fields.String(required=True)
    change = fields.Nested(MilestoneChange, required=True)


@registry.event("MilestoneChangeAccepted", published=ALL)
class MilestoneChangeAccepted(Schema):
    """The other party agreed: the change applies."""

    change_id = fields.String(required=True)
    change = fields.Nested(MilestoneChange, required=True)


@registry.event("MilestoneChangeRejected", published=ALL)
class MilestoneChangeRejected(Schema):
    change_id = fields.String(required=True)


# -- the end --------------------------------------------------------------------------


class ContractOutcome(Schema):
    """What reputation and analysts need about how a contract ended."""

    contract_id = fields.String(required=True)
    buyer_id = fields.String(required=True)
    seller_id = fields.String(required=True)
    currency = fields.String(required=True)
    total_amount = fields.Integer(required=True)
    total_paid = fields.Integer(required=True)
    on_time = fields.Boolean(required=True)
    late_milestones = fields.List(fields.String(), load_default=list)


@registry.event("ContractCompleted", published=ALL)
class ContractCompleted(ContractOutcome):
    """Every milestone is paid, settled or removed."""


@registry.event("CancellationProposed", published=ALL, personal={"reason": "proposed_by"})
class CancellationProposed(Schema):
    proposed_by = fields.String(required=True)
    reason = fields.String(required=True)


@registry.event("CancellationRejected", published=ALL)
class CancellationRejected(Schema):
    rejected_by = fields.String(required=True)


@registry.event("ContractCancelled", published=ALL)
class ContractCancelled(ContractOutcome):
    """Escrow refunds what ``refund_milestone_ids`` still hold."""

    reason = fields.String(required=True)
    by_agreement = fields.Boolean(required=True)
    cancelled_by = fields.String(required=True)
    refund_milestone_ids = fields.List(fields.String(), load_default=list)


# -- hourly contracts ------------------------------------------------------------------


class WeekRef(Schema):
    week = fields.Integer(required=True)
    """Counted from the start date: week ``n`` begins ``start_date + 7n``."""


@registry.event("TimeRecorded", published=ALL, personal={"memo": ACTOR})
class TimeRecorded(WeekRef):
    """The seller's minutes for one day (0 removes the day's entry)."""

    day = fields.Date(required=True)
    minutes = fields.Integer(required=True)
    memo = fields.String(load_default="")


@registry.event("WeekClosed", published=ALL)
class WeekClosed(WeekRef):
    """A week's invoice: ``amount`` = its minutes at ``rate`` per hour, rounded
    half up. ``invoice_id`` is derived from the contract and the week, and the
    review deadline recorded, so a replay bills the same weeks."""

    invoice_id = fields.String(required=True)
    week_start = fields.Date(required=True)
    minutes = fields.Integer(required=True)
    rate = fields.Integer(required=True)
    amount = fields.Integer(required=True)
    review_due_at = fields.AwareDateTime(allow_none=True, load_default=None)


@registry.event("InvoiceApproved", published=ALL)
class InvoiceApproved(WeekRef):
    """Escrow charges the buyer for the invoice and releases it to the seller."""

    invoice_id = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    seller_id = fields.String(required=True)
    automatic = fields.Boolean(required=True)
    payment_method = fields.String(allow_none=True, load_default=None)
    """The card to charge: the offer's, or the last the buyer named after a decline."""


@registry.event("InvoiceDisputed", published=ALL, personal={"reason": "opened_by"})
class InvoiceDisputed(WeekRef):
    """Frozen: nothing is charged until an administrator resolves it."""

    invoice_id = fields.String(required=True)
    opened_by = fields.String(required=True)
    reason = fields.String(required=True)


@registry.event("InvoiceDisputeResolved", published=ALL, personal={"note": "resolved_by"})
class InvoiceDisputeResolved(WeekRef):
    """``to_seller`` of the invoice's ``amount`` is charged and released; the
    rest is never charged."""

    invoice_id = fields.String(required=True)
    amount = fields.Integer(required=True)
    to_seller = fields.Integer(required=True)
    resolved_by = fields.String(required=True)
    note = fields.String(load_default="")
    payment_method = fields.String(allow_none=True, load_default=None)


@registry.event("InvoicePaid", published=ALL)
class InvoicePaid(WeekRef):
    """Escrow charged and released the invoice: ``amount`` gross, ``fee`` the platform's."""

    invoice_id = fields.String(required=True)
    amount = fields.Integer(required=True)
    fee = fields.Integer(required=True)


@registry.event("InvoiceSettled", published=ALL)
class InvoiceSettled(InvoicePaid):
    """Escrow charged and released a resolved dispute's share."""


@registry.event("WeeklyLimitChanged", published=ALL)
class WeeklyLimitChanged(Schema):
    from_week = fields.Integer(required=True)
    weekly_limit = fields.Integer(required=True)


@registry.event("HourlyPaused", published=ALL)
class HourlyPaused(Schema):
    """No time may be recorded from ``from_week`` on, until resumed."""

    from_week = fields.Integer(required=True)


@registry.event("HourlyResumed", published=ALL)
class HourlyResumed(Schema):
    from_week = fields.Integer(required=True)


@registry.event("HourlyContractEnded", published=ALL, personal={"reason": "ended_by"})
class HourlyContractEnded(Schema):
    """Either party ended it: weeks up to ``last_week`` are billed at once; the
    contract completes when every invoice is paid or settled."""

    ended_by = fields.String(required=True)
    reason = fields.String(load_default="")
    last_week = fields.Integer(required=True)


@registry.event("InvoiceChargeFailed", published=ALL)
class InvoiceChargeFailed(WeekRef):
    """Escrow's charge ``attempt`` for the invoice was declined; the buyer
    names another card (``InvoiceChargeRetried``)."""

    invoice_id = fields.String(required=True)
    attempt = fields.Integer(required=True)
    reason = fields.String(load_default="")


@registry.event("InvoiceChargeRetried", published=ALL)
class InvoiceChargeRetried(WeekRef):
    """Escrow charges ``amount`` (the invoice, or a dispute's share) to
    ``payment_method`` as the invoice's charge number ``attempt``."""

    invoice_id = fields.String(required=True)
    attempt = fields.Integer(required=True)
    amount = fields.Integer(required=True)
    payment_method = fields.String(required=True)


@registry.event("DisputeCaseRead", published=ALL)
class DisputeCaseRead(Schema):
    """An administrator read a disputed contract's case (stream
    ``casefile-<contract_id>``): ``part`` is ``case`` (the contract, its
    history, escrow and conversation) or ``file:<file_id>``."""

    contract_id = fields.String(required=True)
    admin_id = fields.String(required=True)
    part = fields.String(required=True)
