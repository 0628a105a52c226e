"""The identity service: accounts, sessions, profiles, portfolios and file records."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from nameko.timer import timer

from services.identity import api, domain, two_factor
from services.identity.domain import ANYONE, EmailClaim, FileRecord, Session, User
from services.identity.events import ADMIN
from services.identity.mailer import MailerProvider, MailOutbox, mail_outbox, outbox_metadata
from services.identity.passwords import hash_password, needs_rehash, verify_password
from services.identity.throttle import Throttle, login_keys, second_factor_keys, sign_up_keys
from services.identity.throttle import metadata as throttle_metadata
from services.identity.views import profile_view
from shared.auth import TokenIssuer
from shared.blobs import ALLOWED_TYPES
from shared.config import settings
from shared.consumer import decode_message, event_handler, event_handlers
from shared.database import ReadModelDatabase
from shared.erasure import forget_person
from shared.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    StaleState,
    TokenInvalid,
    Unauthorized,
)
from shared.eventlog import Aggregate, ServiceEventLog
from shared.facts import LearnedFacts
from shared.jsonready import json_ready
from shared.logging import get_logger
from shared.personal import ERASED
from shared.projection import ProjectionWorker
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


def erase_person(event_log: ServiceEventLog, user_id: str, erased_by: str, now: datetime) -> None:
    """Free the address, record ``PersonalDataErased``, delete identity's keys
    (in this order: a retry after a crash finishes what is left)."""
    user = event_log.get(USER, user_id)
    if not user.exists:
        raise NotFound("no such user")
    if not user.erased and user.email != ERASED:
        event_log.run(CLAIM, user.email, lambda claim: domain.release_claim_of(claim, user_id))

    def erase(u: User) -> list[domain.EventSpec]:
        # Its sessions end with it: the gateway refuses their access tokens at once.
        erased = domain.erase_personal_data(u, erased_by)
        return [*erased, domain.end_sessions(now, None, "personal data erased")] if erased else []

    event_log.run(USER, user_id, erase)
    event_log.forget(user_id)
    log.info("personal data erased", user_id=user_id, by=erased_by)


class IdentityService(MarketplaceService):
    name = "identity"
    db = ReadModelDatabase(throttle_metadata, outbox_metadata)
    tokens = TokenIssuer()
    mail = MailerProvider()
    facts = LearnedFacts()  # proposals' parties, for the files an edit attaches
    # Queues each mail its events ask for, once (see services/identity/mailer.py).
    mail_outbox = ProjectionWorker(MailOutbox())

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
        throttle.take(sign_up_keys(client_ip, self.sign_ups_per_hour), now, "sign-ups")
        email = domain.normalize_email(data["email"])
        problems = domain.password_problems(data["password"], email)
        if problems:
            raise InvalidInput("the password is too weak", {"fields": {"password": problems}})
        password_hash = hash_password(data["password"])  # before claiming: keeps the gap short
        user_id = self.event_log.new_id("user")
        self._claim_email(email, user_id)
        events = domain.register(User(), user_id, email, password_hash, data["roles"])
        events.append(self._verification(user_id, email))
        self.event_log.create(USER, user_id, events)
        log.info("user registered", user_id=user_id, roles=data["roles"])
        return {
            "user_id": user_id,
            "email": email,
            "roles": sorted(set(data["roles"])),
            "email_verified": False,
        }

    def _verification(self, user_id: str, email: str) -> domain.EventSpec:
        """A verification link for ``email``, to be mailed (its token is made
        again by the mailer; only its hash is recorded)."""
        request_id = self.event_log.new_id("verification")
        token = domain.mail_token(self.mail.key, "verify", user_id, request_id)
        expires = self.clock.now() + domain.VERIFY_EMAIL_TTL
        return domain.verification_request(request_id, email, domain.hash_token(token), expires)

    def _claim_email(self, email: str, user_id: str) -> None:
        """Exactly one account holds an address: of two racing sign-ups (or
        email changes), the one whose claim lands second finds it taken. An
        address is taken over from an account that does not hold it any more
        (an email change that never completed), or never verified it in
        ``UNVERIFIED_CLAIM_TTL``: registering an address is no way to keep its
        owner out."""
        now = self.clock.now()

        def claim(state: EmailClaim) -> list[domain.EventSpec]:
            events: list[domain.EventSpec] = []
            if state.user_id == user_id:
                return []  # this account's already (a retry)
            if state.user_id is not None:
                holder = self.event_log.get(USER, state.user_id)
                recent = now - (state.claimed_at or now) < STALE_CLAIM
                if recent or domain.holds_address(holder, email, now):
                    raise Conflict(
                        "this email address is already registered", {"reason": "email_taken"}
                    )
                reason = "never verified" if holder.exists else "registration never completed"
                events.append(("EmailClaimReleased", {"user_id": state.user_id, "reason": reason}))
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
        throttle.take(keys, now, "failed logins")
        claim = self.event_log.get(CLAIM, email)
        user = self.event_log.get(USER, claim.user_id) if claim.user_id else User()
        if not verify_password(user.password_hash or None, data["password"]):
            # The same answer whether or not the address has an account.
            raise Unauthorized("the email or password is wrong", {"reason": "invalid_credentials"})
        throttle.give_back(keys)
        throttle.clear(email, client_ip)
        password_hash = user.password_hash
        if needs_rehash(password_hash):  # whatever else changed: any revision
            password_hash = hash_password(data["password"])
            self.event_log.record(
                domain.user_stream(user.user_id),
                [("PasswordChanged", {"password_hash": password_hash})],
            )
        if user.two_factor.enabled:
            expires = now + two_factor.CHALLENGE_TTL
            raise Unauthorized(
                "enter the code from your authenticator app, or a recovery code "
                "(POST /api/v1/auth/login/two-factor with this challenge)",
                {
                    "reason": "two_factor_required",
                    "challenge": two_factor.challenge(
                        self.mail.key, user.user_id, password_hash, user.two_factor, expires
                    ),
                },
            )
        return self._start_session(user, now)

    @rpc
    def login_two_factor(
        self,
        challenge: str,
        code: str | None = None,
        recovery_code: str | None = None,
    ) -> dict[str, Any]:
        """The second step of a login: the challenge its password step answered,
        and a code from the authenticator (each taken once) or a recovery code.
        Wrong ones are throttled per account (``throttle.SECOND_FACTOR``)."""
        body = {"challenge": challenge, "code": code, "recovery_code": recovery_code}
        data = load(api.TwoFactorLoginRequest(), {k: v for k, v in body.items() if v})
        user_id = two_factor.challenge_user(data["challenge"])
        try:
            uuid.UUID(user_id)
        except ValueError:
            raise TokenInvalid("this sign-in is not valid", {"reason": "token_invalid"}) from None
        user, now = self.event_log.get(USER, user_id), self.clock.now()
        two_factor.check_challenge(
            self.mail.key, data["challenge"], user.password_hash, user.two_factor, now
        )
        self._throttled_code(
            user,
            lambda u: two_factor.second_factor(
                u.two_factor, data.get("code"), data.get("recovery_code"), now
            ),
        )
        return self._start_session(user, now, second_factor=True)

    def _session_limits(self) -> tuple[timedelta, timedelta]:
        config = settings()
        return (
            timedelta(seconds=config.session_idle_seconds),
            timedelta(seconds=config.session_max_seconds),
        )

    def _start_session(
        self, user: User, now: datetime, second_factor: bool = False
    ) -> dict[str, Any]:
        session_id = str(uuid.uuid4())
        refresh_token = domain.refresh_token(self.mail.key, session_id, 0)
        expires = domain.session_expiry(now, now, *self._session_limits())
        started = {
            "session_id": session_id,
            "user_id": user.user_id,
            "token_hash": domain.hash_token(refresh_token),
            "expires_at": expires,
            "started_at": now,
            "two_factor": second_factor,
        }
        self.event_log.create(SESSION, session_id, [("SessionStarted", started)])
        return self._token_pair(user, session_id, refresh_token, second_factor)

    def _token_pair(
        self, user: User, session_id: str, refresh_token: str, second_factor: bool
    ) -> dict[str, Any]:
        """Tokens for a session; roles that need a second factor only if it was given."""
        roles, withheld = two_factor.session_roles(user.roles, second_factor)
        return {
            "access_token": self.tokens.issue(
                user.user_id,
                roles,
                session_id,
                email_verified=user.email_verified,
                two_factor=second_factor,
                withheld_roles=tuple(withheld),
            ),
            "refresh_token": refresh_token,
            "token_type": "Bearer",
            "expires_in": self.tokens.ttl_seconds,
            "user_id": user.user_id,
            "roles": roles,
            "email_verified": user.email_verified,
            "two_factor": second_factor,
            "withheld_roles": withheld,
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
        """Rotate the refresh token. Presenting the one just rotated out (a
        second tab, a retry) within ``REFRESH_GRACE`` gets the current one;
        presenting an older one revokes the session."""
        load(api.RefreshRequest(), {"refresh_token": refresh_token})
        session_id, now = self._session_id(refresh_token), self.clock.now()
        presented = domain.hash_token(refresh_token)
        invalid = Unauthorized("the refresh token is not valid", {"reason": "invalid"})
        known = self.event_log.get(SESSION, session_id)
        if not known.session_id:
            raise invalid
        user = self.event_log.get(USER, known.user_id)
        if user.session_ended(session_id, known.started_at):
            raise Unauthorized("this session has ended; log in again", {"reason": "session_ended"})
        idle, lifetime = self._session_limits()
        outcome: dict[str, bool] = {}

        def rotate(session: Session) -> list[domain.EventSpec]:
            new_token = domain.refresh_token(self.mail.key, session_id, session.generation + 1)
            expires = domain.session_expiry(session.started_at or now, now, idle, lifetime)
            events, outcome["accepted"] = domain.refresh_session(
                session, presented, domain.hash_token(new_token), now, expires
            )
            outcome["revoked"] = bool(events) and not outcome["accepted"]
            return events

        # A refresh that loses a race decides again: it is then the grace case.
        session = self.event_log.run(SESSION, session_id, rotate, attempts=3)
        if not outcome.get("accepted"):
            if outcome.get("revoked"):
                log.warning("refresh token reuse: session revoked", session_id=session_id)
            raise invalid
        if user.erased:
            raise invalid
        current = domain.refresh_token(self.mail.key, session_id, session.generation)
        if not domain.same_hash(domain.hash_token(current), session.token_hash):
            # A token from before tokens were derived: the other tab has it.
            raise Unauthorized("the refresh token was already used", {"reason": "reused"})
        return self._token_pair(user, session_id, current, session.two_factor)

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

    # -- two-factor sign-in ---------------------------------------------------------

    @rpc
    def two_factor_status(self, user_id: str) -> dict[str, Any]:
        self._own(user_id)
        user = USER.require(self.event_log.get(USER, user_id))
        state = user.two_factor
        return {
            "enabled": state.enabled,
            "pending": bool(state.secret) and not state.enabled,
            "required": bool(two_factor.REQUIRED_FOR.intersection(user.roles)),
            "recovery_codes_left": state.recovery_codes_left if state.enabled else 0,
        }

    @rpc
    def start_two_factor(self, user_id: str, current_password: str) -> dict[str, Any]:
        """A new authenticator secret, to be confirmed with a code from the app."""
        load(api.StartTwoFactorRequest(), {"current_password": current_password})
        self._own(user_id)
        user = USER.require(self.event_log.get(USER, user_id))
        self._check_password(user, current_password, "current_password")
        enrollment_id = self.event_log.new_id("two_factor")
        secret = two_factor.new_secret(secrets.token_bytes(20))
        self.event_log.run(
            USER,
            user_id,
            lambda u: two_factor.start_enrollment(u.two_factor, enrollment_id, secret),
        )
        return {
            "enrollment_id": enrollment_id,
            "secret": secret,
            "otpauth_uri": two_factor.provisioning_uri(secret, user.email),
        }

    @staticmethod
    def _new_recovery_codes() -> tuple[list[str], list[str]]:
        codes = [
            two_factor.recovery_code(secrets.token_bytes(two_factor.RECOVERY_CODE_BYTES))
            for _ in range(two_factor.RECOVERY_CODES)
        ]
        return codes, [two_factor.hash_recovery_code(c) for c in codes]

    def _throttled_code(self, user: User, decide: Callable[[User], list[domain.EventSpec]]) -> User:
        """Run a decision that takes a second factor, throttling wrong ones per account."""
        now, keys, throttle = self.clock.now(), second_factor_keys(user.user_id), Throttle(self.db)
        throttle.take(keys, now, "wrong codes")
        try:
            state = self.event_log.run(USER, user.user_id, decide)
        except InvalidInput:
            raise  # a wrong code: it stays counted
        except Exception:
            throttle.give_back(keys)
            raise
        throttle.forget(keys)
        return state

    @rpc
    def enable_two_factor(self, user_id: str, session_id: str, code: str) -> dict[str, Any]:
        """Confirm the authenticator: sign-in needs it from now on, every other
        session ends, and the recovery codes are shown (this once)."""
        load(api.TwoFactorCodeRequest(), {"code": code})
        self._own(user_id)
        user = USER.require(self.event_log.get(USER, user_id))
        codes, hashes = self._new_recovery_codes()
        now = self.clock.now()
        self._throttled_code(
            user,
            lambda u: [
                *two_factor.enable(u.two_factor, code, now, hashes),
                domain.end_sessions(now, session_id, "two-factor sign-in turned on"),
            ],
        )
        log.info("two-factor sign-in turned on", user_id=user_id)
        return {"recovery_codes": codes}

    @rpc
    def renew_recovery_codes(self, user_id: str, code: str) -> dict[str, Any]:
        """New recovery codes for a current code from the app; the old ones stop."""
        load(api.TwoFactorCodeRequest(), {"code": code})
        self._own(user_id)
        user = USER.require(self.event_log.get(USER, user_id))
        codes, hashes = self._new_recovery_codes()
        now = self.clock.now()
        self._throttled_code(
            user, lambda u: two_factor.renew_recovery_codes(u.two_factor, code, now, hashes)
        )
        return {"recovery_codes": codes}

    @rpc
    def disable_two_factor(
        self,
        user_id: str,
        current_password: str,
        code: str | None = None,
        recovery_code: str | None = None,
    ) -> dict[str, Any]:
        """Turn two-factor sign-in off: the password and a second factor, and
        never for a role that needs it."""
        body = {"current_password": current_password, "code": code, "recovery_code": recovery_code}
        data = load(api.DisableTwoFactorRequest(), {k: v for k, v in body.items() if v})
        self._own(user_id)
        user = USER.require(self.event_log.get(USER, user_id))
        self._check_password(user, data["current_password"], "current_password")
        now = self.clock.now()

        def turn_off(u: User) -> list[domain.EventSpec]:
            off = two_factor.disable(u.two_factor, u.roles, "turned off by the user")
            given = two_factor.second_factor(
                u.two_factor, data.get("code"), data.get("recovery_code"), now
            )
            return [*given, *off]

        self._throttled_code(user, turn_off)
        log.info("two-factor sign-in turned off", user_id=user_id)
        return {"enabled": False}

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
        erase_person(self.event_log, user_id, actor, self.clock.now())
        return {"user_id": user_id, "erased": True}

    @event_handler("identity", "PersonalDataErased")
    def on_personal_data_erased(self, payload: dict[str, Any]) -> None:
        """The keys again (an erasure whose process died before deleting them),
        and the mails still to send them: the outbox holds their address."""
        user_id = forget_person(payload, self.event_log)
        with self.db.transaction() as conn:
            conn.execute(mail_outbox.delete().where(mail_outbox.c.user_id == user_id))

    @rpc
    def logout_everywhere(self, user_id: str) -> dict[str, Any]:
        """End every session of the account, the caller's too."""
        self._own(user_id)
        now = self.clock.now()
        self.event_log.run(
            USER,
            user_id,
            lambda user: (
                [domain.end_sessions(now, None, "logged out everywhere")]
                if USER.require(user)
                else []
            ),
        )
        return {"ended_at": now.isoformat()}

    # -- passwords and addresses --------------------------------------------------

    def _check_password(self, user: User, password: str, field: str) -> None:
        """The account's current password, throttled as logins are."""
        now, keys = self.clock.now(), login_keys(user.email, None)
        throttle = Throttle(self.db)
        throttle.take(keys, now, "failed logins")
        if not verify_password(user.password_hash or None, password):
            raise InvalidInput(
                "that is not the account's current password",
                {"fields": {field: ["This is not your current password."]}},
            )
        throttle.give_back(keys)

    def _new_password_hash(self, password: str, email: str) -> str:
        problems = domain.password_problems(password, email)
        if problems:
            raise InvalidInput("the password is too weak", {"fields": {"password": problems}})
        return hash_password(password)

    @rpc
    def change_password(
        self, user_id: str, session_id: str, current_password: str, password: str
    ) -> dict[str, Any]:
        """Needs the current password; every other session ends."""
        load(
            api.ChangePasswordRequest(),
            {"current_password": current_password, "password": password},
        )
        self._own(user_id)
        user = USER.require(self.event_log.get(USER, user_id))
        self._check_password(user, current_password, "current_password")
        password_hash = self._new_password_hash(password, user.email)
        now = self.clock.now()
        self.event_log.run(
            USER, user_id, lambda u: domain.change_password(u, password_hash, session_id, now)
        )
        return {"changed": True}

    @rpc
    def request_password_reset(self, email: str) -> dict[str, Any]:
        """Mail a reset link if the address has an account. The answer is the
        same whether or not it has one."""
        data = load(api.PasswordResetRequest(), {"email": email})
        email = domain.normalize_email(data["email"])
        claim = self.event_log.get(CLAIM, email)
        user = self.event_log.get(USER, claim.user_id) if claim.user_id else User()
        if user.exists and user.email == email:
            request_id = self.event_log.new_id("password_reset")
            token = domain.mail_token(self.mail.key, "reset", user.user_id, request_id)
            token_hash, now = domain.hash_token(token), self.clock.now()
            expires = now + domain.RESET_PASSWORD_TTL
            self.event_log.run(
                USER,
                user.user_id,
                lambda u: domain.request_password_reset(u, request_id, token_hash, expires, now),
            )
        return {"accepted": True}

    @rpc
    def reset_password(self, token: str, password: str) -> dict[str, Any]:
        """A new password by a mailed link; every session of the account ends."""
        load(api.ResetPasswordRequest(), {"token": token, "password": password})
        user_id, request_id = self._mail_token(token)
        user = self.event_log.get(USER, user_id)
        now, token_hash = self.clock.now(), domain.hash_token(token)
        domain.redeem(user.resets.get(request_id), token_hash, now)  # before hashing
        password_hash = self._new_password_hash(password, user.email)
        self.event_log.run(
            USER,
            user_id,
            lambda u: domain.reset_password(u, request_id, token_hash, password_hash, now),
        )
        return {"reset": True}

    @staticmethod
    def _mail_token(token: str) -> tuple[str, str]:
        parsed = domain.parse_mail_token(token)
        if parsed is None:
            raise TokenInvalid("this link is not valid", {"reason": "token_invalid"})
        return parsed

    @rpc
    def verify_email(self, token: str) -> dict[str, Any]:
        """Redeem a verification link: the address it was sent to is verified
        (and becomes the account's, for an email change)."""
        load(api.VerifyEmailRequest(), {"token": token})
        user_id, request_id = self._mail_token(token)
        now, token_hash = self.clock.now(), domain.hash_token(token)
        user = self.event_log.get(USER, user_id)
        sent = domain.redeem(user.verifications.get(request_id), token_hash, now)
        changing = sent.email != user.email
        if changing:
            self._claim_email(sent.email, user_id)
        state = self.event_log.run(
            USER, user_id, lambda u: domain.verify_email(u, request_id, token_hash, now, True)
        )
        if changing:
            old = user.email
            self.event_log.run(
                CLAIM,
                old,
                lambda claim: (
                    [("EmailClaimReleased", {"user_id": user_id, "reason": "email changed"})]
                    if claim.user_id == user_id
                    else []
                ),
            )
        return {"user_id": user_id, "email": state.email, "email_verified": True}

    @rpc
    def request_email_verification(self, user_id: str) -> dict[str, Any]:
        """Send the account's verification link again."""
        self._own(user_id)
        user = USER.require(self.event_log.get(USER, user_id))
        now = self.clock.now()
        self.event_log.run(
            USER,
            user_id,
            lambda u: domain.request_verification(u, self._verification(user_id, u.email), now),
        )
        return {"sent": True, "email": user.email}

    @rpc
    def change_email(self, user_id: str, email: str, current_password: str) -> dict[str, Any]:
        """Mail a link to the new address; it becomes the account's once the
        link is followed (until then the account keeps its current one)."""
        data = load(
            api.ChangeEmailRequest(), {"email": email, "current_password": current_password}
        )
        self._own(user_id)
        email = domain.normalize_email(data["email"])
        user = USER.require(self.event_log.get(USER, user_id))
        self._check_password(user, data["current_password"], "current_password")
        claim = self.event_log.get(CLAIM, email)
        if claim.user_id not in (None, user_id) and domain.holds_address(
            self.event_log.get(USER, claim.user_id), email, self.clock.now()
        ):
            raise Conflict("this email address is already registered", {"reason": "email_taken"})
        now = self.clock.now()
        self.event_log.run(
            USER,
            user_id,
            lambda u: domain.request_verification(u, self._verification(user_id, email), now),
        )
        return {"sent": True, "email": email}

    @timer(interval=settings().mail_send_interval)
    def send_mail(self) -> None:
        """Deliver the mails that are due (see services/identity/mailer.py)."""
        self.mail.mailer(self.db).send_due(self.clock.now())

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

    # -- saved freelancers ---------------------------------------------------------

    @rpc
    def save_freelancer(self, buyer_id: str, seller_id: str) -> dict[str, Any]:
        """Put a seller on the buyer's list; saving again changes nothing."""
        self._own(buyer_id)
        seller = self.event_log.get(USER, seller_id)
        self.event_log.run(USER, buyer_id, lambda buyer: domain.save_freelancer(buyer, seller))
        return {"seller_id": seller_id, "saved": True}

    @rpc
    def unsave_freelancer(self, buyer_id: str, seller_id: str) -> dict[str, Any]:
        self._own(buyer_id)
        self.event_log.run(USER, buyer_id, lambda buyer: domain.unsave_freelancer(buyer, seller_id))
        return {"seller_id": seller_id, "saved": False}

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

    @event_handlers("projects", "ProjectPosted", "ProjectEdited")
    def on_project_attachments(self, payload: dict[str, Any]) -> None:
        """Whoever can read a project (anyone) may read the files its buyer attached."""
        event = decode_message(payload)
        self._grant(event.data.get("attachment_ids") or [], event.metadata.actor_id, ANYONE)

    @event_handler("bidding", "ProposalSubmitted")
    def on_proposal_submitted(self, payload: dict[str, Any]) -> None:
        """The project's buyer may read the files a proposal attaches."""
        self.facts.learn(payload)
        data = decode_message(payload).data
        self._grant(data["attachment_ids"], data["seller_id"], data["buyer_id"])

    @event_handler("bidding", "ProposalEdited")
    def on_proposal_edited(self, payload: dict[str, Any]) -> None:
        event = decode_message(payload)
        if not event.data.get("attachment_ids"):
            return
        parties = self.facts.require(
            "bidding", event.subject, domain.evolve_proposal_parties, ("", ""), all, "proposal"
        )
        seller, buyer = parties
        self._grant(event.data["attachment_ids"], seller, buyer)

    def _grant(self, file_ids: list[str], owner_id: str, reader: str) -> None:
        for file_id in file_ids:
            self.event_log.run(
                FILE,
                str(file_id),
                lambda record: domain.grant_file_access(record, owner_id, reader),
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
