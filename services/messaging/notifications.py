"""Which events notify whom, and what they say: one table, pure functions.

Each entry names the recipients (by role in the proposal or contract the
event is about, or by a field of the event) and the thing the
notification links to. A notification's id is derived from the event's id
and the recipient, so replaying or redelivering an event never notifies twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.schemas import PublishedEvent

Parties = dict[str, str]  # buyer_id, seller_id, project_id


@dataclass(frozen=True)
class Rule:
    kind: str
    title: str
    recipients: Callable[[dict[str, Any], Parties], list[str]]
    link: str  # what the notification is about: project, proposal, contract, conversation


def _buyer(d: dict[str, Any], p: Parties) -> list[str]:
    return [p["buyer_id"]] if p.get("buyer_id") else []


def _seller(d: dict[str, Any], p: Parties) -> list[str]:
    return [p["seller_id"]] if p.get("seller_id") else []


def _both(d: dict[str, Any], p: Parties) -> list[str]:
    return _buyer(d, p) + _seller(d, p)


def _field(name: str) -> Callable[[dict[str, Any], Parties], list[str]]:
    return lambda d, p: [d[name]]


def _fields(*names: str) -> Callable[[dict[str, Any], Parties], list[str]]:
    return lambda d, p: [d[name] for name in names]


def _other_than(name: str) -> Callable[[dict[str, Any], Parties], list[str]]:
    return lambda d, p: [u for u in _both(d, p) if u != d[name]]


RULES: dict[str, Rule] = {
    "ProposalSubmitted": Rule(
        "proposal_received", "New proposal on your project", _buyer, "proposal"
    ),
    "ProposalShortlisted": Rule(
        "shortlisted", "Your proposal was shortlisted", _seller, "proposal"
    ),
    "ProposalDeclined": Rule(
        "proposal_declined", "Your proposal was declined", _seller, "proposal"
    ),
    "ProposalNotSelected": Rule(
        "proposal_not_selected",
        "The buyer hired someone else for this project",
        _seller,
        "proposal",
    ),
    "SellerInvited": Rule("invited", "You are invited to propose", _field("seller_id"), "project"),
    "KeywordAlertMatched": Rule(
        "alert_matched", "A new project matches your alert", _field("seller_id"), "project"
    ),
    "OfferSent": Rule("offer_received", "You received an offer", _seller, "contract"),
    "OfferRevised": Rule("offer_changed", "The offer was revised", _seller, "contract"),
    "OfferChangesRequested": Rule(
        "offer_changes_requested", "The seller asked for changes to your offer", _buyer, "contract"
    ),
    "OfferWithdrawn": Rule("offer_withdrawn", "The buyer withdrew the offer", _seller, "contract"),
    "OfferExpired": Rule("offer_expired", "The offer expired unanswered", _both, "contract"),
    "ContractStarted": Rule("offer_accepted", "Your offer was accepted", _buyer, "contract"),
    "MilestoneFunded": Rule("milestone_funded", "A milestone was funded", _seller, "contract"),
    "WorkSubmitted": Rule("work_submitted", "Work was submitted for review", _buyer, "contract"),
    "ChangesRequested": Rule("changes_requested", "Changes were requested", _seller, "contract"),
    "MilestoneApproved": Rule("approved", "A milestone was approved", _seller, "contract"),
    "EscrowReleased": Rule(
        "payment_released", "A payment was released to you", _seller, "contract"
    ),
    "EscrowRefunded": Rule("refund", "Money was refunded to you", _buyer, "contract"),
    "ProgressReported": Rule(
        "progress_reported", "The seller reported progress on a milestone", _buyer, "contract"
    ),
    "MilestoneDueSoon": Rule(
        "milestone_due_soon", "A milestone is due soon", _field("seller_id"), "contract"
    ),
    "MilestoneOverdue": Rule(
        "milestone_overdue", "A milestone is overdue", _fields("seller_id", "buyer_id"), "contract"
    ),
    "ApprovalDueSoon": Rule(
        "approval_due_soon",
        "Approve or request changes within {hours} hours or it will be approved automatically",
        _field("buyer_id"),
        "contract",
    ),
    "MilestoneDisputed": Rule(
        "dispute_opened", "A milestone is disputed", _other_than("opened_by"), "contract"
    ),
    "DisputeResolved": Rule("dispute_resolved", "A dispute was resolved", _both, "contract"),
    "ContractCompleted": Rule("contract_completed", "The contract is complete", _both, "contract"),
    "ContractCancelled": Rule(
        "contract_cancelled", "The contract was cancelled", _both, "contract"
    ),
    "ReviewSubmitted": Rule(
        "review_received", "You received a review", _field("reviewee_id"), "contract"
    ),
    "ReviewsRevealed": Rule("reviews_revealed", "Reviews are now visible", _both, "contract"),
    "MessagePosted": Rule("message", "New message", _field("recipient_id"), "conversation"),
}


def notifications_for(event: PublishedEvent, parties: Parties) -> list[dict[str, Any]]:
    """What ``event`` tells whom. ``parties``: the buyer, seller and project of
    the proposal or contract the event's stream belongs to (empty if none)."""
    rule = RULES.get(event.type)
    if rule is None:
        return []
    data = event.data
    if event.type == "MilestoneApproved" and data.get("automatic"):
        rule = Rule("auto_approved", "A milestone was approved automatically", _both, "contract")
    ref = event.subject  # the proposal, contract or conversation it is about
    links = {
        "proposal": ref if event.type.startswith("Proposal") else data.get("proposal_id"),
        "project": data.get("project_id") or parties.get("project_id"),
        "contract": data.get("contract_id") or ref,
        "conversation": ref,
    }
    recipients = dict.fromkeys(u for u in rule.recipients(data, parties) if u)
    return [
        {
            "notification_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{event.event_id}:{user}")),
            "user_id": user,
            "kind": rule.kind,
            "title": rule.title.format(hours=data["hours"]) if "hours" in data else rule.title,
            "link_type": rule.link,
            "link_id": links[rule.link],
            "milestone_id": data.get("milestone_id"),
        }
        for user in recipients
    ]
