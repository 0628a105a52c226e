"""Mail as an effect of identity's events: an outbox in identity's database,
filled from the log, and a sender that delivers each entry once.

* **Filled from the log.** ``MailOutbox`` is a projection of identity's own
  streams: each ``EmailVerificationRequested`` and ``PasswordResetRequested``
  becomes one row keyed by the event's id, in the same transaction as the
  projection's checkpoint, so a crash or a replay never queues a mail twice.
  The outbox table is not the projection's own (it is not dropped when the
  projection is reset): a rebuild finds every row there and adds nothing, and
  an event whose token has expired queues nothing at all.
* **Sent once.** The sender claims a due row with a conditional update (the
  claim is a lease, so a sender that died lets another take the row over),
  sends it over SMTP to ``SMTP_URL`` and marks it sent. A failure is retried
  with a growing delay until the token expires. The one window left is a
  crash between the SMTP server accepting the mail and the row being marked:
  the mail is then sent again, with the same ``Message-ID`` (the event's id),
  which is how mail systems recognise a duplicate.
* **No token in the log or on the broker.** The events hold the request's id
  and the token's hash; the token is a MAC of the request's id under a key
  only identity holds (``domain.mail_token``), made again here to write the
  link. The events are private: the relay never publishes them.
"""

from __future__ import annotations

import hashlib
import hmac
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from sqlalchemy.engine import Connection

from services.identity import domain
from shared.clock import SystemClock
from shared.config import settings
from shared.database import Database
from shared.jsonready import aware
from shared.logging import get_logger
from shared.projection import Projection
from shared.schemas import PublishedEvent
from shared.sql import insert_for

log = get_logger(__name__)

outbox_metadata = sa.MetaData()
mail_outbox = sa.Table(
    "mail_outbox",
    outbox_metadata,
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.String(500)),
)

KINDS = {
    "EmailVerificationRequested": "verify_email",
    "PasswordResetRequested": "reset_password",  # pragma: allowlist secret
}
LEASE = timedelta(seconds=60)
"""How long a claimed mail is left to its sender before another may send it."""
MAX_BACKOFF = timedelta(minutes=10)


def token_key(secret: str) -> bytes:
    """The key of mailed and refresh tokens, derived from the token secret
    (``JWT_SECRET``): one secret to keep, and a key used for nothing else."""
    return hmac.new(secret.encode(), b"marketplace account tokens v1", hashlib.sha256).digest()


class MailOutbox(Projection):
    name = "identity_mail_outbox"
    version = 1
    metadata = sa.MetaData()  # owns no table: a reset must not forget what was queued
    categories = ("user",)
    event_types = tuple(KINDS)
    private = True

    def __init__(self, clock: SystemClock | None = None) -> None:
        self.clock = clock or SystemClock()

    def apply(self, conn: Connection, event: PublishedEvent) -> None:
        data = event.data
        expires_at = aware(data["expires_at"])
        now = self.clock.now()
        if expires_at <= now:
            return  # a link nobody could use any more
        row = {
            "event_id": event.event_id,
            "kind": KINDS[event.type],
            "user_id": event.subject,
            "request_id": data["request_id"],
            "recipient": data["email"],
            "expires_at": expires_at,
            "queued_at": event.recorded_at,
            "next_attempt_at": event.recorded_at,
            "attempts": 0,
        }
        insert = insert_for(conn)
        conn.execute(insert(mail_outbox).values(**row).on_conflict_do_nothing())


# -- composing ------------------------------------------------------------------


@dataclass(frozen=True)
class Letter:
    subject: str
    path: str
    purpose: str
    text: str


LETTERS = {
    "verify_email": Letter(
        "Verify your email address",
        "/verify-email",
        "verify",
        "Confirm that this is your address by opening this link within 24 hours:\n\n{link}\n\n"
        "Until it is verified, your account cannot post projects, send proposals or be paid.\n"
        "If you did not sign up or change your address, ignore this mail.",
    ),
    "reset_password": Letter(
        "Reset your password",
        "/reset-password",
        "reset",
        "Someone asked to reset the password of your account. To choose a new one, open this "
        "link within an hour:\n\n{link}\n\nIt works once; every session of the account ends "
        "when it is used. If it was not you, ignore this mail: your password stays as it is.",
    ),
}


def compose(
    row: Any, key: bytes, app_url: str, sender: str, message_domain: str = "marketplace"
) -> EmailMessage:
    letter = LETTERS[row.kind]
    token = domain.mail_token(key, letter.purpose, row.user_id, row.request_id)
    link = f"{app_url.rstrip('/')}{letter.path}?{urlencode({'token': token})}"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = row.recipient
    message["Subject"] = letter.subject
    # The event's id: a mail sent again after a crash is recognisably the same one.
    message["Message-ID"] = f"<{row.event_id}@{message_domain}>"
    message["X-Marketplace-Kind"] = row.kind
    message.set_content(letter.text.format(link=link))
    return message


# -- sending --------------------------------------------------------------------


class SmtpSender:
    """A real SMTP client (the standard library's) for ``SMTP_URL``."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"SMTP_URL must be smtp:// or smtps://, not {parts.scheme!r}")
        self.host = parts.hostname or "127.0.0.1"
        self.tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.tls else 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.starttls = parse_qs(parts.query).get("starttls", ["false"])[0] == "true"
        self.timeout = timeout

    def send(self, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if self.tls:
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with client:
            if self.starttls:
                client.starttls(context=context)
            if self.user:
                client.login(self.user, self.password or "")
            client.send_message(message)


class Mailer:
    def __init__(self, db: Database, sender: SmtpSender, key: bytes, app_url: str, mail_from: str):
        self.db = db
        self.sender = sender
        self.key = key
        self.app_url = app_url
        self.mail_from = mail_from

    def send_due(self, now: datetime, limit: int = 20) -> int:
        """Send what is due; returns how many were sent."""
        t = mail_outbox
        due = sa.select(t).where(
            t.c.sent_at.is_(None), t.c.next_attempt_at <= now, t.c.expires_at > now
        )
        with self.db.engine.connect() as conn:
            rows = conn.execute(due.order_by(t.c.next_attempt_at).limit(limit)).all()
        sent = 0
        for row in rows:
            if not self._claim(row, now):
                continue  # another sender has it
            try:
                self.sender.send(compose(row, self.key, self.app_url, self.mail_from))
            except (OSError, smtplib.SMTPException) as exc:
                delay = min(timedelta(seconds=2 ** min(row.attempts, 10)), MAX_BACKOFF)
                # Never the exception's text: a refused recipient's names the address.
                error = f"{type(exc).__name__} {getattr(exc, 'smtp_code', '')}".strip()
                self._update(row, next_attempt_at=now + delay, last_error=error)
                log.warning("mail not sent; will retry", kind=row.kind, error=error)
                continue
            self._update(row, sent_at=now, last_error=None)
            log.info("mail sent", kind=row.kind, event_id=str(row.event_id))
            sent += 1
        return sent

    def _claim(self, row: Any, now: datetime) -> bool:
        t = mail_outbox
        with self.db.transaction() as conn:
            claimed = conn.execute(
                t.update()
                .where(
                    t.c.event_id == row.event_id,
                    t.c.sent_at.is_(None),
                    t.c.next_attempt_at == row.next_attempt_at,
                )
                .values(next_attempt_at=now + LEASE, attempts=t.c.attempts + 1)
            )
            return claimed.rowcount == 1

    def _update(self, row: Any, **values: Any) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                mail_outbox.update().where(mail_outbox.c.event_id == row.event_id).values(**values)
            )


@dataclass(frozen=True)
class MailSettings:
    key: bytes
    """The key of mailed and refresh tokens (``token_key``)."""
    smtp_url: str
    app_url: str
    mail_from: str

    def mailer(self, db: Database) -> Mailer:
        return Mailer(db, SmtpSender(self.smtp_url), self.key, self.app_url, self.mail_from)


class MailerProvider(DependencyProvider):  # type: ignore[misc]  # nameko is untyped
    """Injects :class:`MailSettings` from the container's config (``SMTP_URL``,
    ``APP_URL``, ``MAIL_FROM``, ``JWT_SECRET``) or the environment."""

    def setup(self) -> None:
        config, env = self.container.config, settings()
        secret = config.get("JWT_SECRET") or env.token_secret()
        self.settings = MailSettings(
            token_key(secret),
            config.get("SMTP_URL") or env.smtp_url,
            config.get("APP_URL") or env.app_url,
            config.get("MAIL_FROM") or env.mail_from,
        )

    def get_dependency(self, worker_ctx: Any) -> MailSettings:
        return self.settings
