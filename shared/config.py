"""All configuration, read from environment variables in one place.

Every setting has a default that works on a developer machine (`make run`):
an embedded SQLite event store under ``var/`` and the local RabbitMQ.
README.md ("Configuration") lists the variables; this module is the truth.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from environs import Env

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    environment: str
    """``development`` (readable logs) or ``production`` (JSON logs)."""
    var_dir: Path
    event_store_url: str
    """``sqlite:///path``, ``postgresql://...`` or ``kurrentdb://...`` / ``esdb://...``."""
    event_store_timeout: float
    """Seconds any single call to a networked event store may take."""
    amqp_uri: str
    relay_checkpoint_url: str
    """Where the relay keeps its checkpoint (an SQL database)."""
    relay_batch_size: int
    log_format: str
    log_level: str
    gateway_host: str
    gateway_port: int
    gateway_internal_address: str
    """Where the gateway serves /metrics and every service's health: a port the
    Ingress does not route (default: an ephemeral one on localhost)."""
    rpc_timeout: float
    consumer_max_retries: int
    consumer_retry_delay_ms: int
    jwt_secret: str | None
    """Signing key of access tokens; required in production (see ``token_secret``)."""
    actor_signing_key: str | None
    """The gateway's key for signing who calls each RPC (see ``shared.signing``)."""
    actor_verify_keys: tuple[str, ...]
    event_signing_key: str | None
    """The relay's key for signing every event it publishes (see ``shared.signing``)."""
    event_verify_keys: tuple[str, ...]
    password_hash_concurrency: int
    """argon2 hashes identity runs at once (64 MiB each)."""
    trusted_proxy_hops: int
    sign_ups_per_address_hour: int
    """Sign-ups one client address may make an hour before each waits longer."""
    """Proxies in front of the gateway whose X-Forwarded-For/-Proto it believes."""
    access_token_ttl: int
    session_idle_seconds: int
    """A session not refreshed for this long ends (its refresh token expires)."""
    session_max_seconds: int
    """A session ends this long after login, however much it is used."""
    smtp_url: str
    """Where identity sends mail: ``smtp://[user:pass@]host:port[?starttls=true]``, ``smtps://``."""
    mail_from: str
    app_url: str
    """The frontend's address: the links in mails point there."""
    web_dist: Path
    """The built web app (``web/dist``) the gateway serves at ``/``."""
    mail_send_interval: float
    """How often identity sends the mails that are due."""
    upload_max_bytes: int
    blob_dir: Path
    cors_origins: tuple[str, ...]
    idempotency_ttl_hours: int
    db_pool_size: int
    """Connections a process keeps to each SQL database it uses other than the
    event store (its read model; the relay's checkpoints), for its reads and
    writes alike, and never more (see ``shared.sql.shared_engine``)."""
    event_store_pool_size: int
    """The same for a SQL event store: its reads and appends (and one more
    connection that LISTENs for appends)."""
    db_pool_timeout_seconds: float
    """How long a worker waits for a pooled connection when all are busy; then
    its request fails as unavailable (503), rather than queue without end."""
    response_cache_mib: int
    """Memory the gateway may keep answers to reads in (see ``gateway.response_cache``); 0: off."""
    project_idle_days: float
    health_address: str
    """Where a service or the relay answers /health/live and /health/ready."""
    project_expiry_check_seconds: float
    contract_review_days: float
    """The review period a new offer gets unless it names one (days; may be a fraction)."""
    contract_review_check_seconds: float
    """How often the contracts service approves submissions whose review period ran out."""
    contract_reminder_check_seconds: float
    """How often the contracts service records the reminders that fell due."""
    offer_expiry_days: float
    """How long an offer version waits for the seller's answer (0: forever)."""
    milestone_due_reminder_hours: float
    """How long before a funded milestone's due date its seller is reminded."""
    approval_reminder_hours: float
    """How long before a submission is approved automatically its buyer is reminded."""
    escrow_fee_bps: int
    """The platform's fee on released money, in basis points (1,000 = 10%)."""
    escrow_funding_recovery_seconds: float
    escrow_refund_attempts: int
    """How many times the provider is asked for a refund it declines before it
    stays failed for an operator."""
    review_window_days: float
    """How long after a contract ends its parties may review each other."""
    review_reveal_check_seconds: float
    personal_keys_url: str = ""
    """Where the keys of personal data live (``shared.personal``); empty: the
    event store's own database when it is SQL, else ``$VAR_DIR/personal-keys.sqlite``."""
    """A charge with no recorded outcome after this long is looked up at the provider."""

    def database_url(self, service: str) -> str:
        """The read-model database a service owns: ``<SERVICE>_DATABASE_URL``."""
        key = f"{service.upper()}_DATABASE_URL"
        return os.environ.get(key) or f"sqlite:///{self.var_dir / (service + '.sqlite')}"

    def token_secret(self) -> str:
        """The JWT signing key. In development every local process shares one
        random key kept in ``var/jwt-secret``; production must set JWT_SECRET."""
        if self.jwt_secret:
            return self.jwt_secret
        return self.development_secret("jwt-secret", "JWT_SECRET")

    def development_secret(self, name: str, variable: str) -> str:
        """A random secret every local process shares, kept in ``var/<name>``;
        production must set ``variable`` instead."""
        if self.environment == "production":
            raise RuntimeError(f"{variable} must be set in production")
        path = self.var_dir / name
        if not path.exists():
            self.var_dir.mkdir(parents=True, exist_ok=True)
            # Written whole to a private file, then published with link(),
            # which fails if another process published first: no process can
            # ever read a half-written key (nine start at once under make run).
            fd, tmp = tempfile.mkstemp(dir=self.var_dir, prefix=f".{name}-")
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_urlsafe(48))
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
            finally:
                os.unlink(tmp)
        return path.read_text().strip()

    @property
    def gateway_url(self) -> str:
        return f"http://{self.gateway_host}:{self.gateway_port}"


def _sql_default_checkpoint_url(event_store_url: str, var_dir: Path) -> str:
    if event_store_url.startswith(("sqlite", "postgresql")):
        return event_store_url
    return f"sqlite:///{var_dir / 'relay.sqlite'}"


def load_settings() -> Settings:
    env = Env()
    environment = env.str("ENVIRONMENT", "development")
    var_dir = Path(env.str("VAR_DIR", str(PROJECT_ROOT / "var"))).resolve()
    event_store_url = env.str("EVENT_STORE_URL", f"sqlite:///{var_dir / 'eventstore.sqlite'}")
    return Settings(
        environment=environment,
        var_dir=var_dir,
        event_store_url=event_store_url,
        event_store_timeout=env.float("EVENT_STORE_TIMEOUT", 5.0),
        amqp_uri=env.str("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"),
        relay_checkpoint_url=env.str(
            "RELAY_CHECKPOINT_URL", _sql_default_checkpoint_url(event_store_url, var_dir)
        ),
        relay_batch_size=env.int("RELAY_BATCH_SIZE", 500),
        log_format=env.str("LOG_FORMAT", "json" if environment == "production" else "console"),
        log_level=env.str("LOG_LEVEL", "INFO"),
        gateway_host=env.str("GATEWAY_HOST", "127.0.0.1"),
        gateway_port=env.int("GATEWAY_PORT", 8000),
        gateway_internal_address=env.str("GATEWAY_INTERNAL_ADDRESS", "127.0.0.1:0"),
        rpc_timeout=env.float("RPC_TIMEOUT", 10.0),
        consumer_max_retries=env.int("CONSUMER_MAX_RETRIES", 5),
        consumer_retry_delay_ms=env.int("CONSUMER_RETRY_DELAY_MS", 2000),
        jwt_secret=env.str("JWT_SECRET", None),
        actor_signing_key=env.str("ACTOR_SIGNING_KEY", None),
        actor_verify_keys=tuple(env.list("ACTOR_VERIFY_KEYS", [])),
        event_signing_key=env.str("EVENT_SIGNING_KEY", None),
        event_verify_keys=tuple(env.list("EVENT_VERIFY_KEYS", [])),
        password_hash_concurrency=env.int("PASSWORD_HASH_CONCURRENCY", 2),
        trusted_proxy_hops=env.int("TRUSTED_PROXY_HOPS", 0),
        sign_ups_per_address_hour=env.int("SIGN_UPS_PER_ADDRESS_HOUR", 20),
        access_token_ttl=env.int("ACCESS_TOKEN_TTL_SECONDS", 900),
        session_idle_seconds=env.int("SESSION_IDLE_SECONDS", 30 * 60),
        session_max_seconds=env.int("SESSION_MAX_SECONDS", 12 * 3600),
        smtp_url=env.str("SMTP_URL", "smtp://127.0.0.1:8025"),
        mail_from=env.str("MAIL_FROM", "Marketplace <no-reply@marketplace.localhost>"),
        app_url=env.str("APP_URL", "http://127.0.0.1:8000"),
        web_dist=Path(env.str("WEB_DIST", str(PROJECT_ROOT / "web" / "dist"))).resolve(),
        mail_send_interval=env.float("MAIL_SEND_INTERVAL_SECONDS", 1.0),
        upload_max_bytes=env.int("UPLOAD_MAX_BYTES", 25 * 1024 * 1024),
        blob_dir=Path(env.str("BLOB_DIR", str(var_dir / "blobs"))).resolve(),
        cors_origins=tuple(env.list("CORS_ORIGINS", [])),
        idempotency_ttl_hours=env.int("IDEMPOTENCY_TTL_HOURS", 24),
        db_pool_size=env.int("DB_POOL_SIZE", 3),
        event_store_pool_size=env.int("EVENT_STORE_POOL_SIZE", 2),
        db_pool_timeout_seconds=env.float("DB_POOL_TIMEOUT_SECONDS", 10),
        response_cache_mib=env.int("RESPONSE_CACHE_MIB", 64),
        project_idle_days=env.float("PROJECT_IDLE_DAYS", 30),
        project_expiry_check_seconds=env.float("PROJECT_EXPIRY_CHECK_SECONDS", 3600),
        health_address=env.str("HEALTH_ADDRESS", "127.0.0.1:0"),
        contract_review_days=env.float("CONTRACT_REVIEW_DAYS", 14),
        contract_review_check_seconds=env.float("CONTRACT_REVIEW_CHECK_SECONDS", 60),
        contract_reminder_check_seconds=env.float("CONTRACT_REMINDER_CHECK_SECONDS", 300),
        offer_expiry_days=env.float("OFFER_EXPIRY_DAYS", 14),
        milestone_due_reminder_hours=env.float("MILESTONE_DUE_REMINDER_HOURS", 24),
        approval_reminder_hours=env.float("APPROVAL_REMINDER_HOURS", 48),
        escrow_fee_bps=env.int("ESCROW_FEE_BPS", 1_000),
        escrow_funding_recovery_seconds=env.float("ESCROW_FUNDING_RECOVERY_SECONDS", 60),
        escrow_refund_attempts=env.int("ESCROW_REFUND_ATTEMPTS", 5),
        review_window_days=env.float("REVIEW_WINDOW_DAYS", 14),
        review_reveal_check_seconds=env.float("REVIEW_REVEAL_CHECK_SECONDS", 60),
        personal_keys_url=env.str("PERSONAL_KEYS_URL", ""),
    )


@lru_cache(maxsize=1)
def settings() -> Settings:
    """Process-wide settings, read once."""
    return load_settings()
