"""``marketplace-admin``: what only an operator does, straight on the event log.

``marketplace-admin grant-admin EMAIL`` makes a registered user an
administrator (who resolves disputes). It records ``RoleAdded`` in the user's
stream with the operator as the actor; the role is in the user's next
session started with a second factor (they turn on two-factor sign-in and log
in again with a code: the role needs it).

``marketplace-admin revoke-admin EMAIL`` takes the role back and ends the
user's sessions (so no access token still carries it).

``marketplace-admin erase EMAIL|USER_ID`` erases a person's data, as
``DELETE /me`` does (their keys, then every service's, are deleted).
"""

from __future__ import annotations

import argparse
import getpass
import sys
import uuid
from datetime import UTC, datetime

from services.identity import domain
from services.identity.domain import EmailClaim, User
from services.identity.events import ADMIN
from shared.config import settings
from shared.context import Context
from shared.eventlog import ServiceEventLog
from shared.eventstore import EventStore, open_event_store
from shared.schemas import load_all_event_schemas


def _operator_log(store: EventStore, operator: str) -> ServiceEventLog:
    correlation = str(uuid.uuid4())
    return ServiceEventLog(
        store, Context(correlation, correlation, f"operator:{operator}", "identity")
    )


def _user_id(log: ServiceEventLog, email: str) -> str:
    claim, _ = log.state(
        domain.email_claim_stream(domain.normalize_email(email)), domain.evolve_claim, EmailClaim()
    )
    if claim.user_id is None:
        raise LookupError(f"no user is registered as {email}")
    return claim.user_id


def grant_admin(store: EventStore, email: str, operator: str) -> str:
    """The user's id; raises LookupError if no user has that address."""
    log = _operator_log(store, operator)
    user_id = _user_id(log, email)
    log.command(
        domain.user_stream(user_id), domain.evolve_user, User(), lambda u: domain.add_role(u, ADMIN)
    )
    return user_id


def revoke_admin(store: EventStore, email: str, operator: str) -> str:
    """The user's id; raises LookupError if no user has that address."""
    log = _operator_log(store, operator)
    user_id = _user_id(log, email)
    now = datetime.now(UTC)
    log.command(
        domain.user_stream(user_id),
        domain.evolve_user,
        User(),
        lambda u: domain.remove_role(u, ADMIN, now),
    )
    return user_id


def erase(store: EventStore, who: str, operator: str) -> str:
    """Erase a user named by address or id; returns the id (LookupError if none)."""
    from services.identity.service import erase_person
    from shared.errors import NotFound

    log = _operator_log(store, operator)
    user_id = _user_id(log, who) if "@" in who else who
    try:
        erase_person(log, user_id, f"operator:{operator}", datetime.now(UTC))
    except NotFound:
        raise LookupError(f"no user {who}") from None
    return user_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="marketplace-admin", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    grant = commands.add_parser("grant-admin", help="make a registered user an administrator")
    grant.add_argument("email")
    grant.add_argument("--store", default=None, help="event store URL (default: EVENT_STORE_URL)")
    revoke = commands.add_parser("revoke-admin", help="take the administrator role back")
    revoke.add_argument("email")
    revoke.add_argument("--store", default=None, help="event store URL (default: EVENT_STORE_URL)")
    erasing = commands.add_parser("erase", help="erase a user's personal data")
    erasing.add_argument("email", metavar="EMAIL|USER_ID")
    erasing.add_argument("--store", default=None, help="event store URL (default: EVENT_STORE_URL)")
    args = parser.parse_args(argv)
    load_all_event_schemas()
    store = open_event_store(args.store or settings().event_store_url)
    try:
        if args.command == "erase":
            user_id = erase(store, args.email, getpass.getuser())
        elif args.command == "revoke-admin":
            user_id = revoke_admin(store, args.email, getpass.getuser())
        else:
            user_id = grant_admin(store, args.email, getpass.getuser())
    except LookupError as exc:
        print(exc, file=sys.stderr)
        return 4
    finally:
        store.close()
    if args.command == "erase":
        print(f"{args.email} ({user_id}) is erased")
    elif args.command == "revoke-admin":
        print(f"{args.email} ({user_id}) is no administrator; their sessions ended")
    else:
        print(
            f"{args.email} ({user_id}) is an administrator; to use it they turn on "
            "two-factor sign-in and log in again with a code"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
