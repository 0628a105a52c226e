"""The reputation service: double-blind reviews after a contract ends. The
reputation numbers are a projection of its events (``views.ReputationView``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from nameko.timer import timer

from services.reputation import api, domain, views
from services.reputation.domain import ContractEnd, Feedback
from services.reputation.views import ReputationView
from shared.config import settings
from shared.consumer import event_handler, learns
from shared.erasure import forget_person
from shared.eventlog import Aggregate
from shared.facts import LearnedFacts
from shared.projection import ProjectionWorker
from shared.service import MarketplaceService, rpc
from shared.validation import known_id, load


def feedback_stream(contract_id: str) -> str:
    return f"feedback-{contract_id}"


FEEDBACK = Aggregate("contract", feedback_stream, domain.evolve, Feedback)
"""The reviews of one contract's parties, and whether they are revealed."""


class ReputationService(MarketplaceService):
    name = "reputation"
    reputation_views = ProjectionWorker(ReputationView(own_streams_only=True))
    facts = LearnedFacts()

    @property
    def window(self) -> timedelta:
        days = float(self.nameko_config.get("REVIEW_WINDOW_DAYS", settings().review_window_days))
        return timedelta(days=days)

    def _end(self, contract_id: str) -> ContractEnd:
        """How the contract ended, as contracts' published events told
        reputation; a review just after the end waits a moment for it."""
        return self.facts.await_fold(
            "contracts",
            known_id(contract_id, "contract"),
            domain.evolve_contract,
            ContractEnd(),
            lambda end: end.ended_at is not None,
        )

    @rpc
    def submit_review(self, contract_id: str, request: dict[str, Any]) -> dict[str, Any]:
        review = load(api.ReviewRequest(), request)
        end = self._end(contract_id)
        actor, now, window = self.context.actor_id, self.clock.now(), self.window
        state = self.event_log.run(
            FEEDBACK,
            contract_id,
            lambda s: domain.submit_review(s, end, actor, review, now, window),
        )
        return {"contract_id": contract_id, "revealed": state.revealed}

    @learns("contracts", "OfferSent")
    def learn_parties(self, payloads: list[dict[str, Any]]) -> None:
        """Who the contract's parties are, before it ends."""
        self.facts.learn_all(payloads)

    @event_handler("contracts", "ContractCompleted")
    def on_contract_completed(self, payload: dict[str, Any]) -> None:
        self._open_window(payload)

    @event_handler("contracts", "ContractCancelled")
    def on_contract_cancelled(self, payload: dict[str, Any]) -> None:
        self._open_window(payload)

    def _open_window(self, payload: dict[str, Any]) -> None:
        contract_id = self.facts.learn(payload).data["contract_id"]
        end, window = self._end(contract_id), self.window
        self.event_log.run(FEEDBACK, contract_id, lambda s: domain.open_window(s, end, window))

    @timer(interval=settings().review_reveal_check_seconds)
    def reveal_closed_windows(self) -> int:
        now = self.clock.now()
        with self.reputation_views.connect() as conn:
            due = views.windows_to_close(conn, now)
        return self.event_log.run_each(
            FEEDBACK, due, lambda s: domain.reveal_when_closed(s, now), "review windows closed"
        )

    @event_handler("identity", "PersonalDataErased")
    def on_personal_data_erased(self, payload: dict[str, Any]) -> None:
        """Delete this service's keys for the person; scrub what it learned of them."""
        forget_person(payload, self.event_log, self.facts, [(self.reputation_views, views.erase)])
