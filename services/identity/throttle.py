"""Throttling of logins and sign-ups that a stranger cannot turn against a user.

Failed logins count under three keys at once, each with its own allowance:

* the account **from this address** (5 free failures): someone guessing one
  account from one place. Only this key can slow the owner down from their
  own address, and a stranger elsewhere cannot touch it.
* the **address** (50): someone trying many accounts from one place. Behind
  the Ingress this is the client's address (``TRUSTED_PROXY_HOPS``), not the
  proxy's, so one client cannot slow down everyone.
* the **account** from anywhere (100): guessing spread over many addresses.

Past its allowance a key is not locked: each further failure makes the next
attempt wait longer (1 s, 2 s, 4 s, ... up to a cap), so guessing gets slow
while nobody, the owner included, is ever shut out for long. Sign-ups count
per address: past the hourly allowance, each waits 15 minutes. A success
clears the account-from-this-address key.

Operational state, not domain history: it lives in identity's own database,
outside the event log, and is never rebuilt. An attempt is counted before it
is judged, atomically (an upsert locks the row), and given back if it
succeeds: so concurrent attempts all count, and a parallel burst of guesses
meets the waits its own first guesses set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from shared.database import Database
from shared.errors import TooManyRequests
from shared.jsonready import aware
from shared.sql import insert_for

metadata = sa.MetaData()
login_throttle = sa.Table(
    "login_throttle",
    metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("window_started", sa.DateTime(timezone=True), nullable=False),
    sa.Column("locked_until", sa.DateTime(timezone=True)),
)


@dataclass(frozen=True)
class Limit:
    free: int
    """Failures within ``window`` that cost nothing."""
    window: timedelta
    cap: timedelta
    """The longest a single wait grows to."""
    first: timedelta = timedelta(seconds=1)
    """The first wait past the allowance; each further attempt doubles it."""

    def wait_after(self, failures: int) -> timedelta:
        """How long the next attempt waits once ``failures`` were counted."""
        excess = failures - self.free
        if excess < 0:
            return timedelta(0)
        return min(self.cap, self.first * (1 << min(excess, 20)))


ACCOUNT_AT_ADDRESS = Limit(5, timedelta(minutes=15), timedelta(minutes=15))
ADDRESS = Limit(50, timedelta(minutes=15), timedelta(minutes=5))
ACCOUNT = Limit(100, timedelta(hours=1), timedelta(minutes=1))
SECOND_FACTOR = Limit(5, timedelta(minutes=15), timedelta(minutes=15))
"""Wrong second factors per account. Only who knows the password gets this
far, so no stranger can slow the owner down with it; past five, waits grow to
15 minutes, and guessing a six-digit code (three are valid at a time) takes
years."""


def _digest(text: str) -> str:
    """Keys hold digests: bounded length, and no email kept in the table."""
    return hashlib.sha256(text.encode()).hexdigest()


def login_keys(email: str, client_ip: str | None) -> dict[str, Limit]:
    keys = {f"account:{_digest(email)}": ACCOUNT}
    if client_ip:
        keys[f"pair:{_digest(email + ' ' + client_ip)}"] = ACCOUNT_AT_ADDRESS
        keys[f"address:{client_ip}"] = ADDRESS
    return keys


def second_factor_keys(user_id: str) -> dict[str, Limit]:
    return {f"otp:{user_id}": SECOND_FACTOR}


def sign_up_keys(client_ip: str | None, per_hour: int) -> dict[str, Limit]:
    """``SIGN_UPS_PER_ADDRESS_HOUR`` sign-ups an hour from one address, then
    one every 15 minutes: a wait of a second or two, as a login's first is,
    would not hold back a script whose every sign-up takes that long anyway."""
    wait = timedelta(minutes=15)
    limit = Limit(per_hour, timedelta(hours=1), cap=wait, first=wait)
    return {f"signup:{client_ip}": limit} if client_ip else {}


class Throttle:
    def __init__(self, db: Database) -> None:
        self.db = db

    def take(self, keys: dict[str, Limit], now: datetime, what: str) -> None:
        """Count this attempt under every key *before* it is judged, as if it
        failed, or refuse it (TooManyRequests with ``retry_after``, nothing
        counted) while any key must still wait.

        Counting first, in one transaction whose upserts lock the rows, is what
        makes the throttle hold under parallel guesses: each attempt sees the
        waits the ones before it set, where a check made before any of them was
        counted would let a whole burst through. A success gives its count back
        (``give_back``, or ``forget``)."""
        if not keys:
            return
        insert = insert_for(self.db.engine)
        t = login_throttle
        with self.db.transaction() as conn:  # a refusal rolls every count back
            waits: list[float] = []
            for key, limit in keys.items():
                stale = t.c.window_started < now - limit.window
                stmt = insert(t).values(key=key, failures=1, window_started=now, locked_until=None)
                upsert = stmt.on_conflict_do_update(
                    index_elements=[t.c.key],
                    set_={
                        "failures": sa.case((stale, 1), else_=t.c.failures + 1),
                        "window_started": sa.case((stale, now), else_=t.c.window_started),
                    },
                ).returning(t.c.failures, t.c.locked_until)
                failures, locked_until = conn.execute(upsert).one()
                if locked_until is not None:
                    waits.append((aware(locked_until) - now).total_seconds())
                wait = limit.wait_after(failures)
                conn.execute(
                    t.update()
                    .where(t.c.key == key)
                    .values(locked_until=now + wait if wait else None)
                )
            wait_left = max(waits, default=0)
            if wait_left > 0:
                raise TooManyRequests(
                    f"too many {what}; try again later", {"retry_after": int(wait_left) + 1}
                )

    def give_back(self, keys: dict[str, Limit]) -> None:
        """The attempt ``take`` counted succeeded: it was no failure. A wait it
        set goes too once the failures left are within the allowance."""
        t = login_throttle
        with self.db.transaction() as conn:
            for key, limit in keys.items():
                # (SET sees the row as it was: both use the failures before.)
                conn.execute(
                    t.update()
                    .where(t.c.key == key)
                    .values(
                        failures=sa.case((t.c.failures > 0, t.c.failures - 1), else_=0),
                        locked_until=sa.case(
                            (t.c.failures - 1 < limit.free, None), else_=t.c.locked_until
                        ),
                    )
                )

    def clear(self, email: str, client_ip: str | None) -> None:
        """A login succeeded: the account from this address starts afresh."""
        self.forget([k for k in login_keys(email, client_ip) if k.startswith("pair:")])

    def forget(self, keys: Iterable[str]) -> None:
        wanted = list(keys)
        if wanted:
            with self.db.transaction() as conn:
                conn.execute(login_throttle.delete().where(login_throttle.c.key.in_(wanted)))
