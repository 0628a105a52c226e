"""Login throttling per account and per client address.

Operational state, not domain history: it lives in identity's own database,
outside the event log, and is never rebuilt. Counters are updated atomically
(an upsert locks the row), so concurrent failures all count.
"""

from __future__ import annotations

import hashlib
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


def account_key(email: str) -> str:
    return "account:" + hashlib.sha256(email.encode()).hexdigest()


@dataclass(frozen=True)
class Limit:
    failures: int
    window: timedelta
    lockout: timedelta


ACCOUNT_LIMIT = Limit(5, timedelta(minutes=15), timedelta(minutes=15))
ADDRESS_LIMIT = Limit(20, timedelta(minutes=15), timedelta(minutes=15))


class LoginThrottle:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def keys(email: str, client_ip: str | None) -> dict[str, Limit]:
        """Accounts by a digest of the address: bounded length, and no
        address kept in the throttle table."""
        keys = {account_key(email): ACCOUNT_LIMIT}
        if client_ip:
            keys[f"address:{client_ip}"] = ADDRESS_LIMIT
        return keys

    def check(self, email: str, client_ip: str | None, now: datetime) -> None:
        """Raise TooManyRequests while either key is locked out."""
        keys = self.keys(email, client_ip)
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(login_throttle.c.locked_until).where(login_throttle.c.key.in_(keys))
            ).all()
        waits = [(aware(r.locked_until) - now).total_seconds() for r in rows if r.locked_until]
        wait = max(waits, default=0)
        if wait > 0:
            raise TooManyRequests(
                "too many failed logins; try again later", {"retry_after": int(wait) + 1}
            )

    def failed(self, email: str, client_ip: str | None, now: datetime) -> None:
        insert = insert_for(self.db.engine)
        t = login_throttle
        with self.db.transaction() as conn:
            for key, limit in self.keys(email, client_ip).items():
                stale = t.c.window_started < now - limit.window
                stmt = insert(t).values(key=key, failures=1, window_started=now, locked_until=None)
                upsert = stmt.on_conflict_do_update(
                    index_elements=[t.c.key],
                    set_={
                        "failures": sa.case((stale, 1), else_=t.c.failures + 1),
                        "window_started": sa.case((stale, now), else_=t.c.window_started),
                    },
                ).returning(t.c.failures)
                failures = conn.execute(upsert).scalar_one()
                if failures >= limit.failures:
                    conn.execute(
                        t.update().where(t.c.key == key).values(locked_until=now + limit.lockout)
                    )

    def succeeded(self, email: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(login_throttle.delete().where(login_throttle.c.key == account_key(email)))
