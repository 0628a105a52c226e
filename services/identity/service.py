"""The identity service: accounts, sessions, profiles, portfolios and file records."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from services.identity import api, domain
from services.identity.domain import EmailClaim, FileRecord, Session, User
from services.identity.events import ADMIN
from services.identity.passwords import hash_password, needs_rehash, verify_password
from services.identity.throttle import Throttle, login_keys, sign_up_keys
from services.identity.throttle import metadata as throttle_metadata
from services.identity.views import profile_view
from shared.auth import TokenIssuer
from shared.blobs import ALLOWED_TYPES
from shared.config import settings
from shared.consumer import decode_message, event_handler
from shared.database import ReadModelDatabase
from shared.erasure import forget_person
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound, StaleState, Unauthorized
from shared.eventlog import Aggregate, ServiceEventLog
from shared.jsonready import json_ready
from shared.logging import get_logger
from shared.personal import ERASED
from shared.service import MarketplaceService, rpc
from shared.validation import load

log = get_logger(__name__)

STALE_CLAIM = timedelta(minutes=1)
"""A claim whose registration never completed (the process died between the
two appends) may be taken over after this long."""

CLAIM = Aggregate(
    "email address", domain.email_claim_stream, domain.evolve_claim, EmailClaim, checks_id=False
)
"""Who holds an address: appended at the revision it was read at, so racing
sign-ups conflict."""
USER = Aggregate("user", domain.user_stream, domain.evolve_user, User, lambda u: u.exists)
SESSION = Aggregate("session", domain.session_stream, domain.evolve_session, Session)
FILE = Aggregate(
    "file", domain.file_stream, domain.evolve_file, FileRecord, lambda f: f.file_id != ""
)


def erase_person(event_log: ServiceEventLog, user_id: str, erased_by: str) -> None:
    """Free the address, record ``PersonalDataErased``, delete identity's keys
    (in this order: a retry after a crash finishes what is left)."""
    user = event_log.get(USER, user_id)
    if not user.exists:
        raise NotFound("no such user")
    if not user.erased and user.email != ERASED:
        event_log.run(CLAIM, user.email, lambda claim: domain.release_claim_of(claim, user_id))
    event_log.run(USER, user_id, lambda u: domain.erase_personal_data(u, erased_by))
    event_log.forget(user_id)
    log.info("personal data erased", user_id=user_id, by=erased_by)


class IdentityService(MarketplaceService):
    name = "identity"
    db = ReadModelDatabase(throttle_metadata)
    tokens = TokenIssuer()

    @property
    def sign_ups_per_hour(self) -> int:
        configured = self.nameko_config.get("SIGN_UPS_PER_ADDRESS_HOUR")
        return int(configured or settings().sign_ups_per_address_hour)

    # -- accounts ------------------------------------------------------------

    @rpc
    def register(
        self, email: str, password: str, roles: list[str], client_ip: str | None = None
    ) -> dict[str, Any]:
        data = load(api.RegisterRequest(), {"email": email, "password": password, "roles": roles})
        throttle, now = Throttle(self.db), self.clock.now()
        throttle.check(sign_up_keys(client_ip, self.sign_ups_per_hour), now, "sign-ups")
        throttle.count(sign_up_keys(client_ip, self.sign_ups_per_hour), now)
        email = domain.normalize_email(data["email"])
        problems = domain.password_problems(data["password"], email)
        if problems:
            raise InvalidInput("the password is too weak", {"fields": {"password": problems}})
        password_hash = hash_password(data["password"])  # before claiming: keeps the gap short
        user_id = self.event_log.new_id("user")
        self._claim_email(email, user_id)
        events = domain.register(User(), user_id, email, password_hash, data["roles"])
        self.event_log.create(USER, user_id, events)
        log.info("user registered", user_id=user_id, roles=data["roles"])
        return {"user_id": user_id, "email": email, "roles": sorted(set(data["roles"]))}

    def _claim_email(self, email: str, user_id: str) -> None:
        """Exactly one registration holds an address: of two racing sign-ups, the
        one whose claim lands second finds the address taken."""
        now = self.clock.now()

        def claim(state: EmailClaim) -> list[domain.EventSpec]:
            events: list[domain.EventSpec] = []
            if state.user_id is not None:
                holder = self.event_log.get(USER, state.user_id)
                if holder.exists or now - (state.claimed_at or now) < STALE_CLAIM:
                    raise Conflict(
                        "this email address is already registered", {"reason": "email_taken"}
                    )
                events.append(
                    (
                        "EmailClaimReleased",
                        {"user_id": state.user_id, "reason": "registration never completed"},
                    )
                )
            return [*events, ("EmailClaimed", {"user_id": user_id, "email": email})]

        try:  # (a retry of this registration finds its first attempt's claim)
            self.event_log.run(CLAIM, email, claim, attempts=1)
        except StaleState:
            raise Conflict(
                "this email address is already registered", {"reason": "email_taken"}
            ) from None

    @rpc
    def login(self, email: str, password: str, client_ip: str | None = None) -> dict[str, Any]:
        data = load(api.LoginRequest(), {"email": email, "password": password})
        email = domain.normalize_email(data["email"])
        now, keys = self.clock.now(), login_keys(email, client_ip)
        throttle = Throttle(self.db)
        throttle.check(keys, now, "failed logins")
        claim = self.event_log.get(CLAIM, email)
        user = self.event_log.get(USER, claim.user_id) if claim.user_id else User()
        if not verify_password(user.password_hash or None, data["password"]):
            throttle.count(keys, now)
            # The same answer whether or not the address has an account.
            raise Unauthorized("the email or password is wrong", {"reason": "invalid_credentials"})
        throttle.clear(email, client_ip)
        if needs_rehash(user.password_hash):  # whatever else changed: any revision
            self.event_log.record(
                domain.user_stream(user.user_id),
                [("PasswordChanged", {"password_hash": hash_password(data["password"])})],
            )
        return self._start_session(user, now)

    def _start_session(self, user: User, now: datetime) -> dict[str, Any]:
        session_id = str(uuid.uuid4())
        refresh_token = f"{session_id}.{secrets.token_urlsafe(32)}"
        expires = now + timedelta(seconds=settings().refresh_token_ttl)
        started = {
            "session_id": session_id,
            "user_id": user.user_id,
            "token_hash": domain.hash_token(refresh_token),
            "expires_at": expires,
        }
        self.event_log.create(SESSION, session_id, [("SessionStarted", started)])
        return self._token_pair(user, session_id, refresh_token)

    def _token_pair(self, user: User, session_id: str, refresh_token: str) -> dict[str, Any]:
        roles = sorted(user.roles)
        return {
            "access_token": self.tokens.issue(user.user_id, roles, session_id),
            "refresh_token": refresh_token,
            "token_type": "Bearer",
            "expires_in": self.tokens.ttl_seconds,
            "user_id": user.user_id,
            "roles": roles,
        }

    def _session_id(self, refresh_token: str) -> str:
        session_id = refresh_token.split(".", 1)[0]
        try:
            uuid.UUID(session_id)
        except ValueError:
            raise Unauthorized("the refresh token is not valid", {"reason": "invalid"}) from None
        return session_id

    @rpc
    def refresh(self, refresh_token: str) -> dict[str, Any]:
        load(api.RefreshRequest(), {"refresh_token": refresh_token})
        session_id, now = self._session_id(refresh_token), self.clock.now()
        new_token = f"{session_id}.{secrets.token_urlsafe(32)}"
        expires = now + timedelta(seconds=settings().refresh_token_ttl)
        presented, new_hash = domain.hash_token(refresh_token), domain.hash_token(new_token)
        outcome: dict[str, bool] = {}

        def rotate(session: Session) -> list[domain.EventSpec]:
            events, outcome["accepted"] = domain.refresh_session(
                session, presented, new_hash, now, expires
            )
            outcome["revoked"] = bool(events) and not outcome["accepted"]
            return events

        try:
            session = self.event_log.run(SESSION, session_id, rotate, attempts=1)
        except StaleState:
            # Two refreshes with the same token at once: one rotation wins.
            raise Unauthorized("the refresh token was already used", {"reason": "reused"}) from None
        if not outcome.get("accepted"):  # (or a retry: its token was never seen)
            if outcome.get("revoked"):
                log.warning("refresh token reuse: session revoked", session_id=session_id)
            raise Unauthorized("the refresh token is not valid", {"reason": "invalid"})
        user = self.event_log.get(USER, session.user_id)
        if user.erased:
            raise Unauthorized("the refresh token is not valid", {"reason": "invalid"})
        return self._token_pair(user, session_id, new_token)

    @rpc
    def logout(self, refresh_token: str) -> dict[str, Any]:
        load(api.RefreshRequest(), {"refresh_token": refresh_token})
        presented = domain.hash_token(refresh_token)

        def revoke(session: Session) -> list[domain.EventSpec]:
            if not session.session_id or presented != session.token_hash:
                raise Unauthorized("the refresh token is not valid", {"reason": "invalid"})
            return domain.revoke_session(session, None)

        self.event_log.run(SESSION, self._session_id(refresh_token), revoke)
        return {"revoked": True}

    # -- personal data -----------------------------------------------------------

    @rpc
    def erase_personal_data(self, user_id: str) -> dict[str, Any]:
        """Erase a person (themself, or an administrator): their address is
        freed, ``PersonalDataErased`` recorded, and identity's keys for them
        deleted, so what the log holds of them reads as erased. Every other
        service deletes its own keys when it hears the event. Money, contracts
        and reviews stay; they no longer say who the person was."""
        actor = self.context.actor_id
        if actor != user_id and ADMIN not in self.context.roles:
            raise Forbidden("only the person or an administrator may erase their data")
        erase_person(self.event_log, user_id, actor)
        return {"user_id": user_id, "erased": True}

    @event_handler("identity", "PersonalDataErased")
    def on_personal_data_erased(self, payload: dict[str, Any]) -> None:
        """The keys again (an erasure whose process died before deleting them)."""
        forget_person(payload, self.event_log)

    # -- profiles ------------------------------------------------------------

    def _own(self, user_id: str) -> None:
        """Only the account's owner changes it (the gateway checks too)."""
        if self.context.actor_id != user_id:
            raise Forbidden("you can only change your own profile")

    def _profile(self, state: User) -> dict[str, Any]:
        return profile_view(USER.require(state), owner=True)

    @rpc
    def update_buyer_profile(self, user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        wanted = load(api.BuyerProfileRequest(), changes)
        self._own(user_id)
        state = self.event_log.run(
            USER, user_id, lambda user: domain.update_buyer_profile(user, wanted)
        )
        return self._profile(state)

    @rpc
    def update_seller_profile(self, user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        wanted = json_ready(load(api.SellerProfileRequest(), changes))
        owned_photo = None
        if wanted.get("photo_file_id"):
            record = self._file(wanted["photo_file_id"])
            owned_photo = record.owner_id == user_id and record.purpose == "photo"
        self._own(user_id)
        state = self.event_log.run(
            USER, user_id, lambda user: domain.update_seller_profile(user, wanted, owned_photo)
        )
        return self._profile(state)

    @rpc
    def add_experience(self, user_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        data = load(api.ExperienceRequest(), entry)
        experience_id = self.event_log.new_id("experience")
        self._own(user_id)
        state = self.event_log.run(
            USER, user_id, lambda user: domain.add_experience(user, experience_id, data)
        )
        return self._profile(state)

    @rpc
    def remove_experience(self, user_id: str, experience_id: str) -> dict[str, Any]:
        self._own(user_id)
        state = self.event_log.run(
            USER, user_id, lambda user: domain.remove_experience(user, experience_id)
        )
        return self._profile(state)

    @rpc
    def add_portfolio_item(self, user_id: str, item: dict[str, Any]) -> dict[str, Any]:
        data = json_ready(load(api.PortfolioItemRequest(), item))
        owned = {
            f
            for f in data["file_ids"]
            if (record := self._file(f, missing_ok=True)).owner_id == user_id
            and record.purpose in ("portfolio", "photo")
        }
        item_id = self.event_log.new_id("portfolio_item")
        self._own(user_id)
        state = self.event_log.run(
            USER, user_id, lambda user: domain.add_portfolio_item(user, item_id, data, owned)
        )
        return self._profile(state)

    @rpc
    def remove_portfolio_item(self, user_id: str, item_id: str) -> dict[str, Any]:
        self._own(user_id)
        state = self.event_log.run(
            USER, user_id, lambda user: domain.remove_portfolio_item(user, item_id)
        )
        return self._profile(state)

    # -- files ---------------------------------------------------------------

    def _file(self, file_id: str, missing_ok: bool = False) -> FileRecord:
        record = self.event_log.get(FILE, str(file_id))
        return record if missing_ok else FILE.require(record)

    @rpc
    def record_file(
        self, sha256: str, size: int, content_type: str, filename: str, purpose: str
    ) -> dict[str, Any]:
        """Record an upload the gateway has stored; the uploader is the actor."""
        owner = self.context.actor_id
        if owner.startswith(("system:", "anonymous")):
            raise Unauthorized("log in to upload files")
        if purpose not in ALLOWED_TYPES or content_type not in ALLOWED_TYPES[purpose]:
            raise InvalidInput(
                "this file is not accepted for that purpose", {"fields": {"purpose": [purpose]}}
            )
        file_id = self.event_log.new_id("file")
        record = {
            "file_id": file_id,
            "owner_id": owner,
            "sha256": sha256,
            "size": size,
            "content_type": content_type,
            "filename": filename[:300] or "file",
            "purpose": purpose,
            "visibility": domain.visibility_for(purpose),
        }
        self.event_log.create(FILE, file_id, [("FileUploaded", record)])
        return record

    @rpc
    def file_for_download(self, file_id: str) -> dict[str, Any]:
        record = self._file(file_id)
        actor = self.context.actor_id
        viewer = None if actor.startswith(("system:", "anonymous")) else actor
        if not domain.may_download(record, viewer):
            raise Forbidden("you may not download this file")
        return record.public_view()

    # -- reactions -------------------------------------------------------------

    @event_handler("contracts", "WorkSubmitted")
    def on_work_submitted(self, payload: dict[str, Any]) -> None:
        """The buyer may read the files a seller delivered (granted once per file)."""
        event = decode_message(payload)
        owner = event.metadata.actor_id
        for file_id in event.data["file_ids"]:
            self.event_log.run(
                FILE,
                file_id,
                lambda record: domain.grant_file_access(record, owner, event.data["buyer_id"]),
            )

    @event_handler("messaging", "MessagePosted")
    def on_message_posted(self, payload: dict[str, Any]) -> None:
        """The other participant may read the files attached to a message."""
        data = decode_message(payload).data
        for file_id in data["file_ids"]:
            self.event_log.run(
                FILE,
                file_id,
                lambda record: domain.grant_file_access(
                    record, data["sender_id"], data["recipient_id"]
                ),
            )
