"""The escrow service: charges buyers into escrow, releases to sellers on
approval, refunds, carries out dispute splits, and pays sellers out.

Every movement of money is an event in ``escrow-<contract>`` (or
``payouts-<seller>``); the balances people read are a projection of them.
What the contract says (who is the buyer, what each milestone costs, whether
it is still active) escrow learns from contracts' published events and keeps
in its own database (``shared.facts``); it never reads contracts' streams.
"""

from __future__ import annotations

import uuid
from contextlib import suppress
from datetime import timedelta
from functools import partial
from typing import Any

from nameko.timer import timer

from services.escrow import api, domain, views
from services.escrow.domain import ContractTerms, Escrow, Payouts
from services.escrow.payments import Payments
from services.escrow.views import EscrowView
from shared.config import settings
from shared.consumer import decode_message, event_handler, learns
from shared.erasure import forget_person
from shared.errors import PaymentFailed, Unavailable
from shared.eventlog import Aggregate
from shared.facts import LearnedFacts
from shared.logging import get_logger
from shared.projection import ProjectionWorker
from shared.service import MarketplaceService, rpc
from shared.validation import known_id, load

log = get_logger(__name__)


def escrow_stream(contract_id: str) -> str:
    return f"escrow-{contract_id}"


def payouts_stream(seller_id: str) -> str:
    return f"payouts-{seller_id}"


ESCROW = Aggregate("contract", escrow_stream, domain.evolve, Escrow)
"""One contract's escrow (the fold builds it in place, from a new ``Escrow()`` each time)."""
PAYOUTS = Aggregate("seller", payouts_stream, domain.evolve_payouts, Payouts, checks_id=False)


class EscrowService(MarketplaceService):
    name = "escrow"
    escrow_views = ProjectionWorker(EscrowView())
    provider = Payments()
    facts = LearnedFacts()

    @property
    def fee_bps(self) -> int:
        return int(self.nameko_config.get("ESCROW_FEE_BPS", settings().escrow_fee_bps))

    @property
    def refund_attempts(self) -> int:
        return int(
            self.nameko_config.get("ESCROW_REFUND_ATTEMPTS", settings().escrow_refund_attempts)
        )

    @learns("contracts", *domain.CONTRACT_FACTS)
    def learn_contract(self, payloads: list[dict[str, Any]]) -> None:
        """The contract's terms and state, from contracts' published events
        (the two that also move money are learned by their own handlers)."""
        self.facts.learn_all(payloads)

    def _contract(self, contract_id: str, milestone_ids: list[str] | None = None) -> ContractTerms:
        """The contract as escrow learned it. Each event type has its own queue,
        so escrow may hear of the acceptance before the revision it accepted, or
        be asked to fund a milestone just added: it waits a moment until what it
        knows is the accepted version with those milestones."""
        wanted = milestone_ids or []
        state = self.facts.await_fold(
            "contracts",
            known_id(contract_id, "contract"),
            domain.evolve_contract,
            ContractTerms(),
            lambda c: c.settled_for(wanted),
        )
        if not state.contract_id:
            raise Unavailable(
                "the contract is not known here yet; retry in a moment",
                {"reason": "not_yet_known", "contract": contract_id},
            )
        return state

    # -- funding ------------------------------------------------------------------

    @rpc
    def fund_milestones(
        self, contract_id: str, request: dict[str, Any], key: str
    ) -> dict[str, Any]:
        """Charge the buyer for the milestones, into escrow. ``key`` (the request's
        Idempotency-Key) makes the charge id: a retry is the same charge."""
        data = load(api.FundRequest(), request)
        actor = self.context.actor_id
        milestone_ids = sorted(str(m) for m in data["milestone_ids"])
        charge_id = str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"charge:{contract_id}:{actor}:{key}:{milestone_ids}")
        )
        contract = self._contract(contract_id, milestone_ids)
        escrow = self.event_log.run(
            ESCROW,
            contract_id,
            lambda s: domain.request_funding(
                s, contract, actor, milestone_ids, data["payment_method"], charge_id
            ),
        )
        return self._complete_charge(contract_id, charge_id, escrow)

    def _complete_charge(
        self, contract_id: str, charge_id: str, escrow: Escrow | None = None
    ) -> dict[str, Any]:
        """Charge the provider for a requested charge and record the outcome.
        ``escrow``: the state just recorded, if the caller has it (not read again)."""
        if escrow is None:
            escrow = self.event_log.get(ESCROW, contract_id)
        charge = escrow.charges[charge_id]
        if charge.status == "requested":
            result = self.provider.charge(
                charge_id, charge.amount, charge.currency, charge.payment_method
            )
            contract = self._contract(contract_id)
            escrow = self.event_log.run(
                ESCROW,
                contract_id,
                lambda s: domain.record_charge(
                    s,
                    contract,
                    charge_id,
                    result.succeeded,
                    result.reason,
                    result.message,
                    self.fee_bps,
                    result.reference,
                ),
            )
            charge = escrow.charges[charge_id]
            log.info("charge recorded", charge_id=charge_id, status=charge.status)
            self._send_refunds(contract_id, escrow)  # one that landed after the contract ended
        if charge.status == "failed":
            raise PaymentFailed(
                charge.message or "the payment failed",
                {"reason": charge.reason, "charge_id": charge_id},
            )
        return {
            "charge_id": charge_id,
            "contract_id": contract_id,
            "milestone_ids": charge.milestone_ids,
            "amount": charge.amount,
            "currency": charge.currency,
            "status": charge.status,
        }

    @timer(interval=settings().escrow_funding_recovery_seconds)
    def recover(self) -> int:
        """Finish what a crash interrupted: charges with no recorded outcome,
        payouts the provider has not confirmed, refunds with no recorded outcome
        (all idempotent by our ids); and try failed refunds again, each at most
        ``ESCROW_REFUND_ATTEMPTS`` times in all, one attempt per interval."""
        age = float(
            self.nameko_config.get(
                "ESCROW_FUNDING_RECOVERY_SECONDS", settings().escrow_funding_recovery_seconds
            )
        )
        before = self.clock.now() - timedelta(seconds=age)
        attempts = self.refund_attempts
        with self.escrow_views.connect() as conn:
            charges = views.pending_charges(conn, before)
            payouts = views.unsent_payouts(conn, before)
            refunds = views.pending_refunds(conn, before)
            retries = views.retryable_refunds(conn, before, attempts)
        for contract_id, charge_id in charges:
            with suppress(PaymentFailed):  # recorded; the buyer saw it or will
                self._complete_charge(contract_id, charge_id)
        for seller_id, payout_id in payouts:
            self._send_payout(seller_id, payout_id)
        for contract_id, refund_id in retries:
            self.event_log.run(
                ESCROW,
                contract_id,
                partial(domain.retry_refund, refund_id=refund_id, max_attempts=attempts),
            )
        for contract_id, refund_id in [*refunds, *retries]:
            self._try_refund(contract_id, refund_id)
        if charges or payouts or refunds or retries:
            log.info(
                "recovered",
                charges=len(charges),
                payouts=len(payouts),
                refunds=len(refunds),
                refunds_retried=len(retries),
            )
        return len(charges) + len(payouts) + len(refunds) + len(retries)

    # -- what contracts decides ------------------------------------------------------

    @event_handler("contracts", "MilestoneApproved")
    def on_milestone_approved(self, payload: dict[str, Any]) -> None:
        event = decode_message(payload)
        contract_id = event.subject
        contract = self._contract(contract_id)
        cause, fee = str(event.event_id), self.fee_bps
        self.event_log.run(
            ESCROW,
            contract_id,
            lambda s: domain.release(s, contract, event.data["milestone_id"], cause, fee),
        )

    @event_handler("contracts", "MilestoneDisputed")
    def on_milestone_disputed(self, payload: dict[str, Any]) -> None:
        event = decode_message(payload)
        contract_id = event.subject
        contract = self._contract(contract_id)
        cause = str(event.event_id)
        self.event_log.run(
            ESCROW,
            contract_id,
            lambda s: domain.freeze(s, contract, event.data["milestone_id"], cause),
        )

    @event_handler("contracts", "DisputeResolved")
    def on_dispute_resolved(self, payload: dict[str, Any]) -> None:
        event = decode_message(payload)
        contract_id = event.subject
        contract = self._contract(contract_id)
        cause, fee, d = str(event.event_id), self.fee_bps, event.data
        escrow = self.event_log.run(
            ESCROW,
            contract_id,
            lambda s: domain.settle(s, contract, d["milestone_id"], d["to_seller"], cause, fee),
        )
        self._send_refunds(contract_id, escrow)  # the buyer's share

    # -- hourly invoices ------------------------------------------------------------

    def _charge_invoice(
        self,
        contract_id: str,
        invoice_id: str,
        amount: int,
        attempt: int = 1,
        payment_method: str | None = None,
    ) -> None:
        """Charge an approved week (or a dispute's share of it) and release it;
        the charge id is derived from the invoice and the attempt, so each
        happens once."""
        contract = self._contract(contract_id)
        name = f"invoice-charge:{invoice_id}" + (f":{attempt}" if attempt > 1 else "")
        charge_id = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
        escrow = self.event_log.run(
            ESCROW,
            contract_id,
            lambda s: domain.request_invoice_charge(
                s, contract, invoice_id, amount, charge_id, attempt, payment_method
            ),
        )
        if charge_id in escrow.charges:
            with suppress(PaymentFailed):  # recorded (FundingFailed); the buyer's card
                self._complete_charge(contract_id, charge_id, escrow)

    @event_handler("contracts", "InvoiceApproved")
    def on_invoice_approved(self, payload: dict[str, Any]) -> None:
        event = decode_message(payload)
        d = event.data
        self._charge_invoice(
            event.subject, d["invoice_id"], d["amount"], payment_method=d.get("payment_method")
        )

    @event_handler("contracts", "InvoiceDisputeResolved")
    def on_invoice_dispute_resolved(self, payload: dict[str, Any]) -> None:
        event = decode_message(payload)
        d = event.data
        self._charge_invoice(
            event.subject, d["invoice_id"], d["to_seller"], payment_method=d.get("payment_method")
        )

    @event_handler("contracts", "InvoiceChargeRetried")
    def on_invoice_charge_retried(self, payload: dict[str, Any]) -> None:
        """The buyer named another card for a week whose charge was declined."""
        event = decode_message(payload)
        d = event.data
        self._charge_invoice(
            event.subject, d["invoice_id"], d["amount"], d["attempt"], d["payment_method"]
        )

    @event_handler("contracts", "ContractCancelled")
    def on_contract_cancelled(self, payload: dict[str, Any]) -> None:
        event = self.facts.learn(payload)
        contract_id = event.subject
        contract = self._contract(contract_id)
        cause = str(event.event_id)
        escrow = self.event_log.run(
            ESCROW,
            contract_id,
            lambda s: domain.refund_all(
                s, contract, event.data["refund_milestone_ids"], "contract cancelled", cause
            ),
        )
        self._send_refunds(contract_id, escrow)

    @event_handler("contracts", "MilestoneChangeAccepted")
    def on_milestone_changed(self, payload: dict[str, Any]) -> None:
        """A milestone removed while its charge ran: the money goes back."""
        event = self.facts.learn(payload)
        change = event.data["change"]
        if change["action"] != "remove":
            return
        contract_id = event.subject
        contract = self._contract(contract_id)
        cause = str(event.event_id)
        escrow = self.event_log.run(
            ESCROW,
            contract_id,
            lambda s: domain.refund_all(
                s, contract, [change["milestone_id"]], "milestone removed", cause
            ),
        )
        self._send_refunds(contract_id, escrow)

    # -- refunds --------------------------------------------------------------------

    def _send_refunds(self, contract_id: str, escrow: Escrow | None = None) -> None:
        """Ask the provider for every refund of the contract that has no
        recorded outcome (the ones just decided, and any a crash left)."""
        if escrow is None:
            escrow = self.event_log.get(ESCROW, contract_id)
        for refund in list(escrow.refunds.values()):
            if refund.status == "requested":
                self._try_refund(contract_id, refund.refund_id)

    def _try_refund(self, contract_id: str, refund_id: str) -> None:
        """The money's movement is recorded already, so a provider that does not
        answer (or an append that fails after it did) fails nothing here: the
        refund stays requested and the recovery timer asks again, same key."""
        try:
            self._send_refund(contract_id, refund_id)
        except Exception:  # any failure is recovery's to finish
            log.exception("refund left to recovery", refund_id=refund_id)

    def _send_refund(self, contract_id: str, refund_id: str) -> str:
        """One attempt at the provider, idempotent by the attempt's key; its
        answer recorded. Returns the refund's status."""
        refund = self.event_log.get(ESCROW, contract_id).refunds[refund_id]
        if refund.status != "requested":
            return refund.status
        result = self.provider.refund(
            refund.key, refund.charge_reference, refund.amount, refund.currency
        )
        escrow = self.event_log.run(
            ESCROW,
            contract_id,
            partial(
                domain.record_refund,
                refund_id=refund_id,
                attempt=refund.attempt,
                succeeded=result.succeeded,
                reference=result.reference,
                reason=result.reason,
                message=result.message,
            ),
        )
        status = escrow.refunds[refund_id].status
        log.info("refund recorded", refund_id=refund_id, attempt=refund.attempt, status=status)
        return status

    # -- payouts ------------------------------------------------------------------------

    @rpc
    def request_payout(self, request: dict[str, Any], key: str) -> dict[str, Any]:
        data = load(api.PayoutRequest(), request)
        seller = self.context.actor_id
        payout_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"payout:{seller}:{key}"))
        with self.escrow_views.connect() as conn:
            credited = views.credited_to_seller(conn, seller, data["currency"])

        def decide(state: Payouts) -> list[domain.EventSpec]:
            if payout_id in state.payouts:
                return []  # a retry: pay out what was requested
            amount, currency = data["amount"], data["currency"]
            return domain.request_payout(state, credited, seller, payout_id, amount, currency)

        state = self.event_log.run(PAYOUTS, seller, decide)
        reference = self._send_payout(seller, payout_id, state)
        return {
            "payout_id": payout_id,
            "amount": data["amount"],
            "currency": data["currency"],
            "status": "sent",
            "reference": reference,
        }

    def _send_payout(self, seller_id: str, payout_id: str, state: Payouts | None = None) -> str:
        """Ask the provider (idempotent by payout id) and record its reference."""
        if state is None:
            state = self.event_log.get(PAYOUTS, seller_id)
        requested = state.payouts[payout_id]
        reference = self.provider.payout(
            payout_id, seller_id, requested["amount"], requested["currency"]
        )
        self.event_log.run(
            PAYOUTS, seller_id, lambda s: domain.payout_sent(s, payout_id, reference)
        )
        return reference

    @event_handler("identity", "PersonalDataErased")
    def on_personal_data_erased(self, payload: dict[str, Any]) -> None:
        """Delete this service's keys for the person; scrub what it learned of them."""
        forget_person(payload, self.event_log, self.facts)
