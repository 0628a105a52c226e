"""Access tokens: short-lived JWTs signed by identity, verified by the gateway."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cachetools import LRUCache
from nameko.extensions import DependencyProvider

from shared.config import settings
from shared.errors import Unauthorized

ISSUER = "marketplace-identity"
ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    """Who a verified access token speaks for."""

    user_id: str
    roles: tuple[str, ...]
    session_id: str
    email_verified: bool = False
    """Identity's word, when it issued the token, that the account's address is verified."""
    issued_at: float = 0.0
    """When the token was issued (to the millisecond): a session ended later stops it."""
    two_factor: bool = False
    """The session was started with a second factor."""
    withheld_roles: tuple[str, ...] = ()
    """The account's roles this session lacks for want of a second factor."""


#: Verified tokens remembered per process (a client sends the same token with
#: every request until it expires).
VERIFIED_TOKENS_KEPT = 10_000


class AccessTokens:
    def __init__(self, secret: str, ttl_seconds: int = 900) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret must be at least 32 characters")
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        self._verified: LRUCache[str, tuple[Principal, float]] = LRUCache(VERIFIED_TOKENS_KEPT)

    def issue(
        self,
        user_id: str,
        roles: list[str],
        session_id: str,
        now: float | None = None,
        email_verified: bool = False,
        two_factor: bool = False,
        withheld_roles: tuple[str, ...] = (),
    ) -> str:
        # To the millisecond (a JWT NumericDate may have a fraction): the
        # gateway compares it with when a user's sessions were ended.
        issued = round(now if now is not None else time.time(), 3)
        claims = {
            "iss": ISSUER,
            "sub": user_id,
            "roles": roles,
            "sid": session_id,
            "email_verified": email_verified,
            # RFC 8176's authentication methods: password, and a one-time password.
            "amr": ["pwd", "otp"] if two_factor else ["pwd"],
            "withheld_roles": list(withheld_roles),
            "iat": issued,
            "exp": int(issued) + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str, now: float | None = None) -> Principal:
        """The principal of a valid, unexpired token; Unauthorized otherwise.

        A token verified before is not verified again until it expires: its
        signature cannot have changed, and verifying (mostly PyJWT checking the
        key's form on every call) was 5% of the gateway's authenticated reads.
        ``now`` (for tests) is the clock of that remembered path; PyJWT reads
        the real one."""
        known = self._verified.get(token)
        if known is not None:
            principal, expires = known
            if (now if now is not None else time.time()) < expires:
                return principal
            raise Unauthorized("the access token has expired", {"reason": "expired"})
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss", "sid"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the access token has expired", {"reason": "expired"}) from None
        except jwt.InvalidTokenError:
            raise Unauthorized("the access token is not valid", {"reason": "invalid"}) from None
        principal = Principal(
            claims["sub"],
            tuple(claims.get("roles", ())),
            claims["sid"],
            claims.get("email_verified") is True,
            float(claims["iat"]),
            "otp" in claims.get("amr", ()),
            tuple(claims.get("withheld_roles", ())),
        )
        self._verified[token] = (principal, float(claims["exp"]))
        return principal


class TokenIssuer(DependencyProvider):  # type: ignore[misc]  # nameko is untyped: Any
    """Injects :class:`AccessTokens` configured from ``JWT_SECRET`` (or the
    development key) and ``ACCESS_TOKEN_TTL_SECONDS``."""

    def setup(self) -> None:
        config = self.container.config
        secret = config.get("JWT_SECRET") or settings().token_secret()
        ttl = int(config.get("ACCESS_TOKEN_TTL_SECONDS") or settings().access_token_ttl)
        self.tokens = AccessTokens(secret, ttl)

    def get_dependency(self, worker_ctx: Any) -> AccessTokens:
        return self.tokens
