"""What every service does when identity erases a person (``PersonalDataErased``).

Identity deletes its own keys for the person; each service, hearing the
published event, deletes its own (so what it recorded of them reads as erased
in the log, for everyone) and scrubs the published events it kept of them
(``shared.facts``). Its views scrub themselves from the same event in the log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from shared.consumer import decode_message
from shared.eventlog import ServiceEventLog
from shared.facts import Facts
from shared.logging import get_logger
from shared.projection import ProjectionHandle
from shared.sql import write_transaction

Scrub = Callable[[Connection, str], None]

log = get_logger(__name__)


def forget_person(
    payload: dict[str, Any],
    event_log: ServiceEventLog,
    facts: Facts | None = None,
    views: Sequence[tuple[ProjectionHandle, Scrub]] = (),
) -> str:
    """Handle a ``PersonalDataErased`` message (idempotent); returns the person's id.

    ``views``: the service's own projections of its own streams, with the
    function that scrubs each as the view would on the event (they read no
    other service's streams, so they do not see it in the log). The keys go
    first: whatever the projection applies after reads erased already."""
    person: str = decode_message(payload).data["user_id"]
    event_log.forget(person)
    scrubbed = facts.erase(person) if facts is not None else 0
    for handle, scrub in views:
        with write_transaction(handle.runner.engine) as conn:
            scrub(conn, person)
    log.info("personal data forgotten", person_id=person, scrubbed_facts=scrubbed)
    return person
