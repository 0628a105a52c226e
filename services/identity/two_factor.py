"""Two-factor sign-in: a TOTP authenticator (RFC 6238, by pyotp) and one-time
recovery codes, as pure rules. Random secrets and the clock come in as
arguments; the service makes them.

What the log holds: the authenticator's secret sealed as the person's
personal data (``TwoFactorEnrollmentStarted`` declares it sensitive and
personal, so it is encrypted under their key and never published), the
SHA-256 of each recovery code (80 random bits each: a fast hash keeps them
out of the log as it does the other tokens), and the last time step a code
was taken at, so no code is taken twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pyotp

from shared.errors import Conflict, InvalidInput, TokenInvalid
from shared.schemas import EventView

EventSpec = tuple[str, dict[str, Any]]

ISSUER = "Marketplace"
"""The name an authenticator app shows beside the account."""
RECOVERY_CODES = 10
RECOVERY_CODE_BYTES = 10
"""80 bits: 16 base32 characters, written in four groups of four."""
DRIFT_STEPS = 1
"""A code of the step before or after now is taken too (a phone's clock
a little off, a code typed as it changed)."""
CHALLENGE_TTL = timedelta(minutes=5)
"""How long after the password a second factor may be given."""
REQUIRED_FOR = frozenset({"admin"})
"""Roles a session has only when it was started with a second factor."""


@dataclass(frozen=True)
class TwoFactor:
    """An account's second factor, as the log knows it."""

    enrollment_id: str = ""
    secret: str = ""
    """Base32; the person's own, sealed in the log."""
    enabled: bool = False
    recovery_hashes: tuple[str, ...] = ()
    used_recovery: frozenset[int] = frozenset()
    last_step: int = -1
    """The last time step a code was taken at: a code of it or before is refused."""

    @property
    def recovery_codes_left(self) -> int:
        return len(self.recovery_hashes) - len(self.used_recovery)


def evolve(state: TwoFactor, event: EventView) -> TwoFactor:
    data = event.data
    match event.type:
        case "TwoFactorEnrollmentStarted":
            return TwoFactor(data["enrollment_id"], data["secret"])
        case "TwoFactorEnabled":
            return replace(
                state,
                enabled=True,
                recovery_hashes=tuple(data["recovery_code_hashes"]),
                last_step=data["step"],
            )
        case "TwoFactorCodeTaken":
            return replace(state, last_step=max(state.last_step, data["step"]))
        case "RecoveryCodeUsed":
            return replace(state, used_recovery=state.used_recovery | {data["index"]})
        case "RecoveryCodesRenewed":
            return replace(
                state,
                recovery_hashes=tuple(data["recovery_code_hashes"]),
                used_recovery=frozenset(),
                last_step=max(state.last_step, data["step"]),
            )
        case "TwoFactorDisabled":
            return TwoFactor()
    return state


# -- secrets and codes ----------------------------------------------------------


def new_secret(random_bytes: bytes) -> str:
    """An authenticator secret (base32, as apps take it) from 20 random bytes."""
    if len(random_bytes) < 20:
        raise ValueError("a TOTP secret needs at least 160 random bits")
    return base64.b32encode(random_bytes).decode().rstrip("=")


def provisioning_uri(secret: str, email: str) -> str:
    """The ``otpauth://`` URI an authenticator app scans (as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def recovery_code(random_bytes: bytes) -> str:
    """``abcd-efgh-ijkl-mnop``: 80 random bits, typed without confusion (base32)."""
    text = base64.b32encode(random_bytes[:RECOVERY_CODE_BYTES]).decode().lower()
    return "-".join(text[i : i + 4] for i in range(0, 16, 4))


def _normal_recovery(code: str) -> str:
    return "".join(c for c in code.lower() if c.isalnum())


def hash_recovery_code(code: str) -> str:
    return hashlib.sha256(_normal_recovery(code).encode()).hexdigest()


def code_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step a six-digit code belongs to, within the allowed drift, or
    None: compared in constant time, step by step."""
    totp = pyotp.TOTP(secret)
    digits = "".join(c for c in code if not c.isspace())
    if not (digits.isascii() and digits.isdigit()):
        return None
    current = totp.timecode(now)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step).encode(), digits.encode()):
            found = step
    return found


# -- decisions --------------------------------------------------------------------


_WRONG_CODE = InvalidInput(
    "that code is not right (or was used already): use the current one from your app",
    {"fields": {"code": ["The code is not right or was used already."]}},
)


def start_enrollment(state: TwoFactor, enrollment_id: str, secret: str) -> list[EventSpec]:
    """A new authenticator to confirm; one already confirmed stays until then."""
    if state.enabled:
        raise Conflict(
            "two-factor sign-in is on already; turn it off first to change the authenticator",
            {"reason": "two_factor_enabled"},
        )
    return [("TwoFactorEnrollmentStarted", {"enrollment_id": enrollment_id, "secret": secret})]


def enable(
    state: TwoFactor, code: str, now: datetime, recovery_hashes: list[str]
) -> list[EventSpec]:
    """Confirm the authenticator with a code from it: two-factor sign-in is on."""
    if state.enabled:
        raise Conflict("two-factor sign-in is on already", {"reason": "two_factor_enabled"})
    if not state.secret:
        raise Conflict(
            "start setting up two-factor sign-in first (POST /me/two-factor)",
            {"reason": "no_enrollment"},
        )
    step = code_step(state.secret, code, now)
    if step is None:
        raise _WRONG_CODE
    return [
        (
            "TwoFactorEnabled",
            {
                "enrollment_id": state.enrollment_id,
                "recovery_code_hashes": recovery_hashes,
                "step": step,
            },
        )
    ]


def _require_enabled(state: TwoFactor) -> None:
    if not state.enabled:
        raise Conflict("two-factor sign-in is off", {"reason": "two_factor_disabled"})


def take_code(state: TwoFactor, code: str, now: datetime) -> list[EventSpec]:
    """A code from the authenticator, once: the step it is of is recorded, so
    the same code (or an older one) is refused after."""
    _require_enabled(state)
    step = code_step(state.secret, code, now)
    if step is None or step <= state.last_step:
        raise _WRONG_CODE
    return [("TwoFactorCodeTaken", {"step": step})]


def take_recovery_code(state: TwoFactor, code: str) -> list[EventSpec]:
    """One of the recovery codes, once."""
    _require_enabled(state)
    presented = hash_recovery_code(code)
    found = None
    for index, known in enumerate(state.recovery_hashes):
        if (
            hmac.compare_digest(known.encode(), presented.encode())
            and index not in state.used_recovery
        ):
            found = index
    if found is None:
        raise InvalidInput(
            "that recovery code is not right or was used already",
            {"fields": {"recovery_code": ["Not right, or used already."]}},
        )
    return [("RecoveryCodeUsed", {"index": found})]


def second_factor(
    state: TwoFactor, code: str | None, recovery: str | None, now: datetime
) -> list[EventSpec]:
    """Whichever the person gave: an authenticator code or a recovery code."""
    if code:
        return take_code(state, code, now)
    if recovery:
        return take_recovery_code(state, recovery)
    raise InvalidInput(
        "give the code from your authenticator app, or one of your recovery codes",
        {"fields": {"code": ["Missing data for required field."]}},
    )


def renew_recovery_codes(
    state: TwoFactor, code: str, now: datetime, recovery_hashes: list[str]
) -> list[EventSpec]:
    """New recovery codes, for a current authenticator code; the old ones stop."""
    taken = take_code(state, code, now)
    step = taken[0][1]["step"]
    return [("RecoveryCodesRenewed", {"recovery_code_hashes": recovery_hashes, "step": step})]


def disable(state: TwoFactor, roles: tuple[str, ...], reason: str) -> list[EventSpec]:
    """Turn two-factor sign-in off (the caller proved the password and a second
    factor); an administrator may not."""
    _require_enabled(state)
    held = REQUIRED_FOR.intersection(roles)
    if held:
        raise Conflict(
            f"two-factor sign-in is required for the {', '.join(sorted(held))} role",
            {"reason": "two_factor_required"},
        )
    return [("TwoFactorDisabled", {"reason": reason})]


# -- the challenge between password and second factor ------------------------------------


def challenge(
    key: bytes, user_id: str, password_hash: str, state: TwoFactor, expires_at: datetime
) -> str:
    """What a login with the right password answers when a second factor is
    needed: ``<user>.<expiry>.<MAC>``. Keyed by a server secret and bound to
    the password hash and to the second factor's use so far, so it cannot be
    made from the log, a password changed meanwhile voids it, and it signs in
    once: any code or recovery code taken after it was made voids it too.
    Nothing is recorded for it."""
    expires = str(int(expires_at.timestamp()))
    mac = _challenge_mac(key, user_id, expires, password_hash, _uses(state))
    return f"{user_id}.{expires}.{mac}"


def _uses(state: TwoFactor) -> str:
    return f"{state.enrollment_id}:{state.last_step}:{len(state.used_recovery)}"


def _challenge_mac(key: bytes, user_id: str, expires: str, password_hash: str, uses: str) -> str:
    message = f"2fa|{user_id}|{expires}|{password_hash}|{uses}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def challenge_user(token: str) -> str:
    """The user a well-formed challenge names (checked by ``check_challenge``)."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts) or not parts[1].isdigit():
        raise TokenInvalid("this sign-in has expired; log in again", {"reason": "token_invalid"})
    return parts[0]


def check_challenge(
    key: bytes, token: str, password_hash: str, state: TwoFactor, now: datetime
) -> None:
    user_id, expires, mac = token.split(".")
    wanted = _challenge_mac(key, user_id, expires, password_hash, _uses(state))
    if not password_hash or not mac.isascii() or not hmac.compare_digest(wanted, mac):
        raise TokenInvalid("this sign-in is not valid; log in again", {"reason": "token_invalid"})
    if int(expires) <= now.timestamp():
        raise TokenInvalid("this sign-in has expired; log in again", {"reason": "token_expired"})


def session_roles(roles: tuple[str, ...], two_factor: bool) -> tuple[list[str], list[str]]:
    """(roles a session has, roles it is denied for want of a second factor)."""
    held = sorted(set(roles))
    if two_factor:
        return held, []
    return [r for r in held if r not in REQUIRED_FOR], [r for r in held if r in REQUIRED_FOR]
